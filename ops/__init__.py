"""Operations on Amazon Personalize: everything `recs serve` does not need.

- `provisioning` (with `s3`, `plan`, `resources`, `waiting`, `serve_config`): `recs personalize
  provision`, from prepared dataset files to ACTIVE campaigns and a serve config naming them;
- `teardown`, `solution_metrics`: `recs personalize teardown` and `recs personalize metrics`;
- `s3_catalog`: `recs catalog --from-s3`, a catalog of the videos in a bucket.

The runtime backend that `recs serve` loads is `recs.backends.personalize`; this package builds
its clients with `recs.backends.personalize.client.create_client`.
"""
