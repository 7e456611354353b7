#!/bin/sh
# Mints the stack's first tokens into the tokens volume, once (compose.yaml's `tokens`
# service): an admin token for people to start with, incident-service's token (role system)
# for its outbox relay to risk-service, and the gateway's own token (role system) for the
# services' aggregate calls. Only their SHA-256 goes into tokens.toml; each token is written to
# a file of its own, mode 0600. When tokens.toml exists nothing is changed, so restarts keep
# the tokens. Mint more with `assurance-tokens add` (docs/security.md#credentials).
set -eu
dir="${TOKENS_DIR:-/etc/assurance/tokens}"
umask 077
if [ -s "$dir/tokens.toml" ]; then
    echo "init-tokens: $dir/tokens.toml exists; nothing to do"
    exit 0
fi
# Into a temporary file first: a run cut short leaves no half-written tokens.toml behind.
tmp="$dir/tokens.toml.new"
rm -f "$tmp"
mint() {
    # $1 = principal, $2 = role, $3 = the file that receives the token
    assurance-tokens add --tokens-file "$tmp" --principal "$1" --role "$2" \
        --note "minted by compose's tokens service" >"$3.new"
    mv "$3.new" "$3"
}
mint admin admin "$dir/admin-token"
mint incident-relay system "$dir/incident-relay.token"
mint gateway system "$dir/gateway-service.token"
mv "$tmp" "$dir/tokens.toml"
echo "init-tokens: minted an admin token ($dir/admin-token) and the services' tokens"
