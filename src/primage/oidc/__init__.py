"""EGI Check-in's settings as the platform uses them, and a real OpenID Connect provider on
loopback standing in for it (ORY Hydra with the project's own login and consent provider).

Check-in says who a user is; membership of the project's Check-in group says what they may
do: the group arrives as an AARC entitlement URN in the `eduperson_entitlement` claim
(userinfo and ID token), released with the scope of the same name.
"""

from __future__ import annotations

CHECKIN_ISSUER = "https://aai.egi.eu/auth/realms/egi"
GROUPS_CLAIM = "eduperson_entitlement"
# The seed's Check-in group (a VO), with the role every member has.
PROJECT_GROUP = "urn:mace:egi.eu:group:PRIMAGE_Project:role=member#aai.egi.eu"
# What a client of the platform asks for: who the user is, their groups, a refresh token.
SCOPES = ("openid", "profile", "email", "eduperson_entitlement", "offline_access")
