"""The router's choice of emulator: by the service a request is signed for."""

import unittest

import helpers  # noqa: F401

from drillenv import router

AUTH = ("AWS4-HMAC-SHA256 Credential=testing/20261130/us-west-2/{}/aws4_request, "
        "SignedHeaders=host;x-amz-date, Signature=abc")


class RouterTest(unittest.TestCase):
    def test_the_signing_service_picks_the_emulator(self):
        for service in ("rds", "route53", "monitoring", "secretsmanager", "ec2"):
            self.assertEqual(router.service_of({"Authorization": AUTH.format(service)}, "/"), service)
        self.assertEqual(router.MOTO_SERVICES, {"rds", "ec2"})

    def test_presigned_urls_and_unsigned_requests(self):
        presigned = "/?Action=CreateDBInstanceReadReplica&X-Amz-Credential=testing%2F20261130%2Fus-east-1%2Frds%2Faws4_request"
        self.assertEqual(router.service_of({}, presigned), "rds")
        self.assertIsNone(router.service_of({}, "/_localstack/health"))


if __name__ == "__main__":
    unittest.main()
