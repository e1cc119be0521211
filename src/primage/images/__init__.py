"""The image pipeline: discover containers/<dir>/image.yml, tag, build, test and push on the local engine.

`spec` reads image.yml and the Dockerfile (with file:line problems) and orders the builds;
`revision` computes tags and OCI labels from git; `build`, `testing` and `push` drive the
Docker engine through its API (the `docker` SDK). The contract every image folder follows
is in README.md, section "The image pipeline".
"""
