"""Amazon Personalize as a backend: the runtime calls `recs serve` makes.

- `backend`: `PersonalizeBackend`, the `Backend` interface over `personalize-runtime`;
- `config`, `client`, `errors`: its config section, its one boto3 client, its error table.

Provisioning, teardown and metrics (the control plane) are `recs.ops`.
"""
