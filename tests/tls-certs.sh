#!/usr/bin/env bash
# Makes a throwaway CA and a server certificate it signed for 127.0.0.1 and localhost, in DIR:
# ca.pem, server.pem, server.key (for POLYSIO_TEST_CA_FILE, POLYSIO_TEST_TLS_CERT and
# POLYSIO_TEST_TLS_KEY: see tests/run-server and tests/run-client).
#   tests/tls-certs.sh DIR
set -euo pipefail
dir=${1:?usage: tests/tls-certs.sh DIR}
mkdir -p "$dir"
cd "$dir"
ec=(-newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes)
openssl req -x509 "${ec[@]}" -keyout ca.key -out ca.pem -days 2 -subj "/CN=polysio test CA" 2>/dev/null
openssl req "${ec[@]}" -keyout server.key -out server.csr -subj "/CN=localhost" 2>/dev/null
printf 'subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth\n' > server.ext
openssl x509 -req -in server.csr -CA ca.pem -CAkey ca.key -CAcreateserial -out server.pem \
  -days 2 -extfile server.ext 2>/dev/null
