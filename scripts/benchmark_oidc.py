#!/usr/bin/env python3
"""Benchmark the Check-in login path against the real parts, side by side in one run.

- `primage oidc build` warm (a stamp check) and, with --cold, from empty Go module and
  build caches in a temporary PRIMAGE_CACHE (minutes: it downloads Hydra's modules);
- the test provider's start (Hydra and the login server, to the first ready answer) and one
  whole authorization-code flow (login form, consent, code, token request);
- one IM request (`GET /infrastructures`) with the member's access token against the same
  request with an IM username and password: IM asks the issuer's userinfo for every token,
  and the ratio says what that costs.

It prints every round, then the medians and the ratio.

    .venv/bin/python scripts/benchmark_oidc.py [--runs 5] [--cold]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import requests

from primage import oidc
from primage.im_server import LocalIM, OIDCSettings
from primage.oidc import build
from primage.oidc.provider import LocalProvider

ROOT = Path(__file__).resolve().parents[1]
PRIMAGE = str(Path(sys.executable).parent / "primage")
IM_USER, IM_PASSWORD = "bench", "bench-only-password"


def timed(action) -> float:
    start = time.perf_counter()
    action()
    return time.perf_counter() - start


def build_seconds(cold: bool) -> float:
    if not cold:
        return timed(build.build)
    with tempfile.TemporaryDirectory(prefix="primage-oidc-cold-") as cache:
        env = {**os.environ, "PRIMAGE_CACHE": cache, "GOMODCACHE": f"{cache}/go/mod", "GOCACHE": f"{cache}/go/build"}
        seconds = timed(lambda: subprocess.run([PRIMAGE, "oidc", "build"], env=env, check=True))
        subprocess.run(["chmod", "-R", "u+w", cache], check=True)  # the module cache is read-only
        return seconds


def im_request(im: LocalIM, auth: str) -> float:
    headers = {"Accept": "application/json", "Authorization": auth}
    return timed(lambda: requests.get(f"{im.url}/infrastructures", headers=headers, timeout=60).raise_for_status())


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--cold", action="store_true", help="also time a build from empty Go caches (minutes)")
    args = parser.parse_args()
    rows: dict[str, list[float]] = {}
    if args.cold:
        rows["build (cold)"] = [build_seconds(cold=True)]
        print(f"build (cold): {rows['build (cold)'][0]:.1f} s", flush=True)
    with tempfile.TemporaryDirectory(prefix="primage-oidc-bench-") as work:
        work = Path(work)
        provider = LocalProvider(work / "op")
        started = timed(provider.start)
        settings = OIDCSettings((provider.issuer,), (oidc.PROJECT_GROUP,), ca=provider.ca)
        im = LocalIM(work / "im", users={IM_USER: IM_PASSWORD}, oidc=settings).start()
        try:
            client = provider.register_client("primage-bench")
            rows["provider start"] = [started]
            for run in range(args.runs):
                measured = {"build (warm)": build_seconds(cold=False)}
                if run:
                    again = LocalProvider(work / f"op-{run}")
                    measured["provider start"] = timed(again.start)
                    again.stop()
                start = time.perf_counter()
                tokens = provider.authorization_code(client, "member")
                measured["code flow"] = time.perf_counter() - start
                token_auth = f"id = im; type = InfrastructureManager; token = {tokens['access_token']}"
                password_auth = f"id = im; type = InfrastructureManager; username = {IM_USER}; password = {IM_PASSWORD}"
                measured["IM request, token"] = im_request(im, token_auth)
                measured["IM request, password"] = im_request(im, password_auth)
                shown = ", ".join(f"{name} {seconds * 1000:.0f} ms" for name, seconds in measured.items())
                print(f"round {run + 1}: {shown}", flush=True)
                for name, seconds in measured.items():
                    rows.setdefault(name, []).append(seconds)
        finally:
            im.stop()
            provider.stop()
    print("\nmedians:")
    for name, values in rows.items():
        print(f"  {name:22} {statistics.median(values) * 1000:8.0f} ms  ({len(values)} runs)")
    token, password = statistics.median(rows["IM request, token"]), statistics.median(rows["IM request, password"])
    print(f"  IM request with a token / with a password: {token / password:.1f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
