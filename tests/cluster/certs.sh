#!/usr/bin/env bash
# Generates the local control plane's credentials in DIR/pki with openssl: a CA, the apiserver
# serving cert (SAN IP:127.0.0.1, DNS:localhost; what kube-rs with rustls checks), an admin client
# cert (group system:masters), the aggregation layer's front-proxy client cert and the
# service-account signing key pair.
# Usage: certs.sh DIR
set -euo pipefail
dir=${1:?usage: certs.sh DIR}
pki="$dir/pki"
mkdir -p "$pki"
cd "$pki"

key() { openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$1.key" 2>/dev/null; }

ca() {
  key ca
  openssl req -x509 -new -key ca.key -sha256 -days 3650 -subj "/CN=pice-local-ca" \
    -addext "basicConstraints=critical,CA:TRUE" \
    -addext "keyUsage=critical,keyCertSign,cRLSign,digitalSignature" -out ca.crt 2>/dev/null
}

# sign NAME SUBJECT EXTENSIONS...
sign() {
  local name=$1 subj=$2; shift 2
  key "$name"
  openssl req -new -key "$name.key" -subj "$subj" -out "$name.csr" 2>/dev/null
  printf '%s\n' "basicConstraints=critical,CA:FALSE" \
    "keyUsage=critical,digitalSignature" "$@" >"$name.ext"
  openssl x509 -req -in "$name.csr" -CA ca.crt -CAkey ca.key -CAcreateserial -sha256 -days 3650 \
    -extfile "$name.ext" -out "$name.crt" 2>/dev/null
  rm -f "$name.csr" "$name.ext"
}

ca
sign apiserver "/CN=kube-apiserver" "extendedKeyUsage=serverAuth" \
  "subjectAltName=IP:127.0.0.1,DNS:localhost,DNS:kubernetes,DNS:kubernetes.default,DNS:kubernetes.default.svc,IP:10.96.0.1"
sign admin "/O=system:masters/CN=pice-admin" "extendedKeyUsage=clientAuth"
sign front-proxy-client "/CN=front-proxy-client" "extendedKeyUsage=clientAuth"
openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out sa.key 2>/dev/null
openssl pkey -in sa.key -pubout -out sa.pub
chmod 600 ./*.key
