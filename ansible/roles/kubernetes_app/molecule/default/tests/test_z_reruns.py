"""A run with an unpinned image fails before anything is installed or applied.

Named to run last (pytest runs files in alphabetical order).
"""

from cluster_verify import run_playbook

from conftest import NAMESPACE


def test_unpinned_image_is_refused(kube):
    before = [
        (o["kind"], o["metadata"]["name"], o["metadata"]["resourceVersion"])
        for o in kube.application_objects(NAMESPACE)
    ]
    run = run_playbook("converge.yml", "-e", "demo_image=registry.primage.test:5000/primage/demo:latest")
    output = run.stdout + run.stderr
    assert run.returncode != 0, output[-3000:]
    assert "must be pinned to a tag other than 'latest'" in output, output[-3000:]
    after = [
        (o["kind"], o["metadata"]["name"], o["metadata"]["resourceVersion"])
        for o in kube.application_objects(NAMESPACE)
    ]
    assert after == before
