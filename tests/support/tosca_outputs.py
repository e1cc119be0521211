"""The outputs a user needs after deploying each topology of tosca/, written down here as the
tests' expectation (not read from the templates): IM must report every one of them."""

EXPECTED_OUTPUTS = {
    "kubernetes_cluster": {"api_endpoint", "front_end_address", "next_steps"},
    "htc_batch": {"api_endpoint", "front_end_address", "next_steps", "application_name", "output_folder"},
    "jupyter": {
        "api_endpoint",
        "front_end_address",
        "next_steps",
        "application_name",
        "notebook_url",
        "notebook_ca_certificate",
    },
}
