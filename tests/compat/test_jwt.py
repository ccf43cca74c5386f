"""JWT role-based access (`service.jwt_rbac`) with the real qdrant-client: a JWT is passed as the
client's `api_key`, over REST and gRPC, and grants what its claims say.

Facts (Qdrant 1.19, src/common/auth/{mod,claims,jwt_parser}.rs, lib/storage/src/rbac/):
* HS256 tokens signed with `service.api_key`; `access` is "r" / "m" or a list of
  {"collection", "access": "r" | "rw" | "prw"}; no `access` claim is full access;
* refusals: 403 "Forbidden: Write access to collection c is required" (PERMISSION_DENIED),
  "Forbidden: Access to collection x is required", "Forbidden: Global access is required";
  expired tokens 403 "ExpiredSignature";
* collection listings show a collection-scoped token its collections only.
"""

import base64
import hashlib
import hmac
import json
import time

import pytest
from qdrant_client import models

from compat_helpers import expect_error

KEY = "jwt-compat-secret"


def token(claims):
    enc = lambda b: base64.urlsafe_b64encode(b).rstrip(b"=").decode()
    signed = enc(json.dumps({"alg": "HS256", "typ": "JWT"}).encode()) + "." + enc(json.dumps(claims).encode())
    signature = hmac.new(KEY.encode(), signed.encode(), hashlib.sha256).digest()
    return signed + "." + enc(signature)


@pytest.fixture(scope="module")
def rbac(request):
    from conftest import QdrantServer, qdrant_binary
    server = QdrantServer(qdrant_binary(), name="jwt",
                          extra_env={"QDRANT__SERVICE__API_KEY": KEY, "QDRANT__SERVICE__JWT_RBAC": "true"})
    request.addfinalizer(server.cleanup)
    server.start()
    admin = server.client("rest", api_key=token({"access": "m"}), timeout=30)
    for name in ("jwt_c", "jwt_other"):
        admin.create_collection(name, vectors_config=models.VectorParams(size=2, distance=models.Distance.DOT))
        admin.upsert(name, wait=True, points=[models.PointStruct(id=1, vector=[1, 0], payload={"k": name})])
    admin.close()
    return server


def test_collection_scoped_tokens(rbac, transport):
    reader = rbac.client(transport, api_key=token({"access": [{"collection": "jwt_c", "access": "r"}]}), timeout=30)
    writer = rbac.client(transport, api_key=token({"access": [{"collection": "jwt_c", "access": "rw"}]}), timeout=30)
    assert [c.name for c in reader.get_collections().collections] == ["jwt_c"]
    assert reader.count("jwt_c", exact=True).count >= 1
    assert reader.query_points("jwt_c", query=[1, 0], limit=1).points[0].id == 1
    with expect_error(reader, "permission_denied", contains="Write access to collection jwt_c is required"):
        reader.upsert("jwt_c", wait=True, points=[models.PointStruct(id=2, vector=[0, 1])])
    with expect_error(reader, "permission_denied", contains="Access to collection jwt_other is required"):
        reader.count("jwt_other")
    writer.upsert("jwt_c", wait=True, points=[models.PointStruct(id=2, vector=[0, 1])])
    with expect_error(writer, "permission_denied", contains="Global access is required"):
        writer.create_collection(f"jwt_new_{transport}",
                                 vectors_config=models.VectorParams(size=2, distance=models.Distance.DOT))
    reader.close()
    writer.close()


def test_global_and_expired_tokens(rbac, transport):
    read_all = rbac.client(transport, api_key=token({"access": "r"}), timeout=30)
    assert {"jwt_c", "jwt_other"} <= {c.name for c in read_all.get_collections().collections}
    with expect_error(read_all, "permission_denied", contains="Global manage access is required"):
        read_all.delete_collection("jwt_other")
    expired = rbac.client(transport, api_key=token({"access": "m", "exp": int(time.time()) - 120}), timeout=30)
    with expect_error(expired, "permission_denied", contains="ExpiredSignature"):
        expired.get_collections()
    read_all.close()
    expired.close()
