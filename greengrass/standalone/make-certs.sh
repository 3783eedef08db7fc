#!/usr/bin/env bash
# Makes a private CA, the broker's certificate and one client certificate per identity, for the standalone broker
# (mosquitto.conf and acl next to this file). For a trial or a test bench: in production, issue certificates from
# your own PKI, keep the CA key offline, and give every key to its owner only.
#
#   greengrass/standalone/make-certs.sh <out-dir> <broker-host> <identity>...
#   e.g. greengrass/standalone/make-certs.sh /etc/mosquitto/interlock broker.cell.local interlock arm-1 planner-1
#
# Writes ca.crt, ca.key, broker.crt, broker.key and <identity>.crt, <identity>.key. Each client certificate's
# common name (CN) is the identity: with use_identity_as_username it is the name the ACL grants topics to.
# Refuses to overwrite an existing CA. Needs openssl.
set -euo pipefail

if [ "$#" -lt 3 ]; then
  echo "usage: $0 <out-dir> <broker-host> <identity>..." >&2
  exit 2
fi
command -v openssl >/dev/null 2>&1 || { echo "openssl is required: run 'apt-get install -y openssl'" >&2; exit 1; }
out=$1
host=$2
shift 2
for id in "$@"; do
  if ! [[ "$id" =~ ^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$ ]]; then
    echo "identity \"$id\": ids are 1-64 of A-Z a-z 0-9 _ . - and start with a letter or digit" >&2
    exit 2
  fi
done
if [ -e "$out/ca.key" ]; then
  echo "$out/ca.key exists: refusing to replace the CA (every certificate it signed would stop working)" >&2
  exit 1
fi
mkdir -p "$out"
umask 077
days=825

openssl req -x509 -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 3650 -subj "/CN=interlock cell CA" \
  -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign" \
  -keyout "$out/ca.key" -out "$out/ca.crt" 2>/dev/null

# The broker's certificate names the host clients connect to (and 127.0.0.1/localhost for a bench).
san="DNS:$host,DNS:localhost,IP:127.0.0.1"
if [[ "$host" =~ ^[0-9.]+$ ]]; then san="IP:$host,DNS:localhost,IP:127.0.0.1"; fi
openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj "/CN=$host" -keyout "$out/broker.key" -out "$out/broker.csr" 2>/dev/null
openssl x509 -req -in "$out/broker.csr" -CA "$out/ca.crt" -CAkey "$out/ca.key" -CAcreateserial -days "$days" \
  -extfile <(printf 'basicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature\nextendedKeyUsage=serverAuth\nsubjectAltName=%s\n' "$san") \
  -out "$out/broker.crt" 2>/dev/null

for id in "$@"; do
  openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj "/CN=$id" -keyout "$out/$id.key" -out "$out/$id.csr" 2>/dev/null
  openssl x509 -req -in "$out/$id.csr" -CA "$out/ca.crt" -CAkey "$out/ca.key" -CAcreateserial -days "$days" \
    -extfile <(printf 'basicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature\nextendedKeyUsage=clientAuth\n') \
    -out "$out/$id.crt" 2>/dev/null
done
rm -f "$out"/*.csr "$out/ca.srl"
# The broker and clients read their certificates; only the CA and each owner read keys.
chmod 644 "$out"/*.crt
echo "wrote $out: ca.crt, broker.crt for $host, and certificates for: $*"
