"""A run with an unpinned image fails before anything is installed or applied.

Named to run last (pytest runs files in alphabetical order).
"""

from kube_contract.verify import request_log, run_playbook


def test_unpinned_image_is_refused(host):
    before = len(request_log(host))
    run = run_playbook("converge.yml", "-e", "demo_image=registry.primage.test:5000/primage/demo:latest")
    output = run.stdout + run.stderr
    assert run.returncode != 0, output[-3000:]
    assert "must be pinned to a tag other than 'latest'" in output, output[-3000:]
    assert len(request_log(host)) == before
