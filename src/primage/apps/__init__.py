"""The application developer's layer: submit, follow, inspect and delete applications.

An application is a submission (`model.Submission`: what to run, on which files, where the
results go) whose workload is rendered from the roles' templates by `primage.workloads`, the one
source of the manifests, and run by a backend (`backend.Backend`). The local backend (`local`)
runs the rendered pod template's container on the Docker engine; a Kubernetes backend creates
the same objects on a cluster. Everything else (finding the inputs, the progress bar, the results
table, the overview picture) is the same whatever runs the tasks.
"""
