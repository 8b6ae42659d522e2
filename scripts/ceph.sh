#!/usr/bin/env bash
# Ceph RGW, the second real S3 server of the tests: a single-node cluster on loopback (one
# monitor, one memstore OSD, no mgr, cephx off, RGW's beast frontend).
#   scripts/ceph.sh install          Debian's radosgw, ceph-mon, ceph-osd (16.2 on bookworm)
#   scripts/ceph.sh start DIR PORT   a cluster in DIR, S3 on 127.0.0.1:PORT (monitor on PORT+1);
#                                    prints the endpoint once RGW answers; user s3lect-test-key
#   scripts/ceph.sh stop DIR         kills the cluster started in DIR
set -euo pipefail
cmd=${1:-}
case "$cmd" in
install)
  if command -v radosgw >/dev/null && command -v ceph-mon >/dev/null && command -v ceph-osd >/dev/null; then
    echo "s3lect setup: Ceph already installed ($(radosgw --version | head -1 | cut -d' ' -f1-3))"; exit 0
  fi
  echo "s3lect setup: installing Ceph RGW (apt-get install radosgw ceph-mon ceph-osd)"
  SUDO=; [ "$(id -u)" = 0 ] || SUDO=sudo
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -q --no-install-recommends radosgw ceph-mon ceph-osd >/dev/null
  radosgw --version | head -1
  ;;
start)
  dir=$(realpath -m "$2"); port=$3; mon=$((port + 1))
  rm -rf "$dir"; mkdir -p "$dir"/{run,log,mon,osd/ceph-0,rgw}
  fsid=$(python3 -c 'import uuid; print(uuid.uuid4())')
  cat > "$dir/ceph.conf" <<CONF
[global]
fsid = $fsid
mon host = v2:127.0.0.1:$mon
public network = 127.0.0.1/32
# No cephx: a throwaway test cluster on loopback. S3 requests are still SigV4-verified by RGW.
auth cluster required = none
auth service required = none
auth client required = none
auth supported = none
ms mon client mode = crc
ms client mode = crc
ms cluster mode = crc
ms service mode = crc
ms mon service mode = crc
ms mon cluster mode = crc
keyring = /dev/null
osd pool default size = 1
osd pool default min size = 1
osd pool default pg num = 8
osd pool default pgp num = 8
osd pool default pg autoscale mode = off
mon allow pool size one = true
mon max pg per osd = 2000
mon warn on pool no redundancy = false
mon data avail warn = 1
mon data avail crit = 0
osd objectstore = memstore
memstore device bytes = 1073741824
# The OSD would otherwise die with "wrong fsid" updating classes and crush on start.
osd class update on start = false
osd crush update on start = false
run dir = $dir/run
log file = $dir/log/\$name.log
admin socket = $dir/run/\$name.asok
pid file = $dir/run/\$name.pid
mon data = $dir/mon/\$cluster-\$id
osd data = $dir/osd/\$cluster-\$id
[client.rgw]
rgw frontends = beast endpoint=127.0.0.1:$port
rgw data = $dir/rgw
CONF
  C=(-c "$dir/ceph.conf")
  monmaptool --create --addv a "[v2:127.0.0.1:$mon]" --fsid "$fsid" "$dir/monmap" >/dev/null
  ceph-mon "${C[@]}" --mkfs -i a --monmap "$dir/monmap" 2>>"$dir/log/setup.log"
  ceph-mon "${C[@]}" -i a 2>>"$dir/log/setup.log"
  ceph "${C[@]}" --connect-timeout 30 osd create >/dev/null
  ceph-osd "${C[@]}" -i 0 --mkfs 2>>"$dir/log/setup.log"
  ceph "${C[@]}" osd crush add-bucket localhost host >/dev/null 2>&1
  ceph "${C[@]}" osd crush move localhost root=default >/dev/null 2>&1
  ceph "${C[@]}" osd crush add osd.0 1.0 host=localhost >/dev/null 2>&1
  ceph-osd "${C[@]}" -i 0 2>>"$dir/log/setup.log"
  radosgw "${C[@]}" -n client.rgw 2>>"$dir/log/setup.log"
  # RGW creates its pools on start; a user can be made once it answers.
  for _ in $(seq 240); do
    curl -s -o /dev/null "http://127.0.0.1:$port/" && break
    sleep 0.5
  done
  curl -s -o /dev/null "http://127.0.0.1:$port/" || { echo "ceph: RGW did not answer on $port; logs in $dir/log" >&2; exit 1; }
  radosgw-admin "${C[@]}" -n client.rgw user create --uid=s3lect --display-name=s3lect \
    --access-key=s3lect-test-key --secret=s3lect-test-secret >/dev/null 2>>"$dir/log/setup.log"
  echo "http://127.0.0.1:$port"
  ;;
stop)
  dir=$(realpath -m "$2")
  for f in "$dir"/run/*.pid; do [ -e "$f" ] && kill -9 "$(cat "$f")" 2>/dev/null || true; done
  ;;
*) echo "usage: scripts/ceph.sh install | start DIR PORT | stop DIR" >&2; exit 2 ;;
esac
