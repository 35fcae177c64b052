"""Amazon Personalize: the production backend (runtime calls) and the tooling that provisions it.

- `backend`: `PersonalizeBackend`, the `Backend` interface over `personalize-runtime`;
- `config`, `client`, `errors`: its config section, its one boto3 client, its error table;
- `provisioning` (with `s3`, `plan`, `waiting`, `serve_config`): `recs personalize ...`;
- `catalog`: `recs catalog --from-s3`.

Nothing outside this package imports boto3.
"""
