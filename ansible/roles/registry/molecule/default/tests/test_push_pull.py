"""An image pushed with credentials over verified TLS comes back with the same digests."""

import hashlib

from conftest import IMAGE_REPO, IMAGE_TAG, refused


def test_push_then_pull_round_trip(host, client, local_image, registry, role_vars):
    remote = f"docker://{registry}/{IMAGE_REPO}:{IMAGE_TAG}"
    pushed = host.run(
        "skopeo copy --preserve-digests --authfile %s --dest-cert-dir %s --digestfile %s/pushed.digest oci:%s:%s %s",
        client["auth"],
        client["certs"],
        client["dir"],
        local_image["path"],
        IMAGE_TAG,
        remote,
    )
    assert pushed.rc == 0, pushed.stderr
    assert host.file(f"{client['dir']}/pushed.digest").content_string.strip() == local_image["manifest"]

    raw = host.run("skopeo inspect --raw --authfile %s --cert-dir %s %s", client["auth"], client["certs"], remote)
    assert raw.rc == 0, raw.stderr
    assert "sha256:" + hashlib.sha256(raw.stdout.encode()).hexdigest() == local_image["manifest"]

    pulled = host.run(
        "skopeo copy --preserve-digests --authfile %s --src-cert-dir %s %s oci:%s/pulled:%s",
        client["auth"],
        client["certs"],
        remote,
        client["dir"],
        IMAGE_TAG,
    )
    assert pulled.rc == 0, pulled.stderr
    index = host.file(f"{client['dir']}/pulled/index.json").content_string
    assert local_image["manifest"] in index
    layer = local_image["layer"].split(":", 1)[1]
    blob_sum = host.check_output("sha256sum %s/pulled/blobs/sha256/%s", client["dir"], layer).split()[0]
    assert blob_sum == layer

    stored = f"{role_vars['registry_storage_dir']}/docker/registry/v2/repositories/{IMAGE_REPO}"
    assert host.file(stored).is_directory


def test_tags_listed_for_the_user(host, client, local_image, registry):
    tags = host.run(
        "skopeo list-tags --authfile %s --cert-dir %s docker://%s/%s",
        client["auth"],
        client["certs"],
        registry,
        IMAGE_REPO,
    )
    assert tags.rc == 0, tags.stderr
    assert IMAGE_TAG in tags.stdout


def test_anonymous_pull_of_the_pushed_image_is_refused(host, client, local_image, registry):
    pull = host.run(
        "skopeo inspect --no-creds --cert-dir %s docker://%s/%s:%s", client["certs"], registry, IMAGE_REPO, IMAGE_TAG
    )
    assert pull.rc != 0
    assert refused(pull.stderr), pull.stderr
    blob = host.run(
        "curl -sS -o /dev/null -w '%%{http_code}' --cacert %s https://%s/v2/%s/blobs/%s",
        client["ca"],
        registry,
        IMAGE_REPO,
        local_image["layer"],
    )
    assert blob.stdout.strip() == "401"


def test_refused_anonymous_push_left_no_tag(host, client, registry):
    tags = host.check_output(
        "skopeo list-tags --authfile %s --cert-dir %s docker://%s/%s",
        client["auth"],
        client["certs"],
        registry,
        IMAGE_REPO,
    )
    assert "anonymous" not in tags
