#!/bin/sh
# The push floor of `npm run bench`: an OCI layout's image uploaded by curl, the leanest client
# there is (no start-up to speak of, no checks, every blob at once): one POST + one monolithic
# PUT ?digest= per blob, all in parallel, then the manifest under its tag. What it takes is
# what the registry needs to take the image in; no client can push faster than that.
# usage: curl-push.sh HOST:PORT REPOSITORY TAG LAYOUT_BLOBS_DIR MANIFEST_HEX
set -eu
reg=$1 repo=$2 tag=$3 dir=$4 manifest=$5
upload() {
  loc=$(curl -sSf -D - -o /dev/null -X POST "http://$reg/v2/$repo/blobs/uploads/" |
    tr -d '\r' | sed -n 's/^[Ll]ocation: //p')
  case $loc in http*) ;; *) loc="http://$reg$loc" ;; esac
  case $loc in *\?*) sep='&' ;; *) sep='?' ;; esac
  curl -sSf -o /dev/null -X PUT -H 'Content-Type: application/octet-stream' \
    -T "$dir/$1" "$loc${sep}digest=sha256:$1"
}
# The manifest's blobs: every "digest" in it (config and layers).
blobs=$(grep -o '"digest" *: *"sha256:[0-9a-f]*"' "$dir/$manifest" | sed 's/.*sha256://; s/"//')
pids=''
for b in $blobs; do
  upload "$b" &
  pids="$pids $!"
done
for p in $pids; do wait "$p"; done
media=$(grep -o '"mediaType" *: *"[^"]*"' "$dir/$manifest" | head -1 | sed 's/.*: *"//; s/"//')
curl -sSf -o /dev/null -X PUT -H "Content-Type: $media" -T "$dir/$manifest" \
  "http://$reg/v2/$repo/manifests/$tag"
