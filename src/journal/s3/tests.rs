//! Unit tests of the S3 store against scripted answers (aws-smithy-mocks).
