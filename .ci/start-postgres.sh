#!/usr/bin/env bash
# Install (Debian's postgresql) and start a server on 127.0.0.1:5432 with trust auth and a
# database named test. Used by .ci/run only when no server answers there.
set -euo pipefail
if ! command -v pg_ctlcluster >/dev/null 2>&1; then
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql >/dev/null
fi
version=$(ls /etc/postgresql | sort -V | tail -n 1)
hba=/etc/postgresql/$version/main/pg_hba.conf
if ! grep -q "ktn-bot ci" "$hba"; then
  sed -i '1i host all all 127.0.0.1/32 trust # ktn-bot ci\nlocal all postgres trust # ktn-bot ci' "$hba"
fi
pg_ctlcluster --skip-systemctl-redirect "$version" main start || pg_ctlcluster --skip-systemctl-redirect "$version" main reload
for _ in $(seq 1 30); do
  if psql -h 127.0.0.1 -U postgres -tAc "select 1" >/dev/null 2>&1; then break; fi
  sleep 1
done
psql -h 127.0.0.1 -U postgres -tAc "select 1 from pg_database where datname='test'" | grep -q 1 \
  || psql -h 127.0.0.1 -U postgres -c "create database test"
