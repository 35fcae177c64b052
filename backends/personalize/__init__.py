"""Amazon Personalize as a backend: the runtime and events calls `recs serve` makes.

- `backend`: `PersonalizeBackend`, the `Backend` interface over `personalize-runtime` (and
  `personalize-events` for PutEvents and PutItems);
- `config`, `client`, `errors`: its config section, its boto3 clients, its error table.

Provisioning, teardown and metrics (the control plane) are `recs.ops`.
"""
