#!/usr/bin/env bash
# A real Redmine for the tracker tests: Debian's `redmine` + `redmine-sqlite`, its REST API on,
# served by webrick on 127.0.0.1:${ASSURANCE_REDMINE_PORT:-3999} in the background.
#
# Prints two lines for the caller to eval (everything else goes to stderr):
#   export ASSURANCE_TEST_REDMINE_URL=http://127.0.0.1:3999
#   export ASSURANCE_TEST_REDMINE_KEY_FILE=/tmp/assurance-redmine-3999/apikey
#
# Idempotent: a server already answering with a working key is reused as is; a missing package
# is installed, a stopped server started. Installing needs root (apt-get, and setpriv to run
# Redmine as www-data). Any failure exits non-zero with the log that explains it.
set -euo pipefail

PORT="${ASSURANCE_REDMINE_PORT:-3999}"
BASE="http://127.0.0.1:$PORT"
DIR="${ASSURANCE_REDMINE_DIR:-/tmp/assurance-redmine-$PORT}"
KEY_FILE="$DIR/apikey"
REDMINE_HOME=/usr/share/redmine

log() { echo "redmine: $*" >&2; }
fail() { log "FATAL: $*"; exit 1; }
# Redmine's HTTP status for $1 with the admin key (000 when nothing answers). The key goes in a
# header, never in the URL.
status_of() {
  local key=""
  [ -r "$KEY_FILE" ] && key="$(cat "$KEY_FILE")"
  curl -s -o /dev/null -m 10 -w '%{http_code}' -H "X-Redmine-API-Key: $key" "$BASE$1" || true
}
print_exports() {
  echo "export ASSURANCE_TEST_REDMINE_URL=$BASE"
  echo "export ASSURANCE_TEST_REDMINE_KEY_FILE=$KEY_FILE"
}

# A running server with a working key: nothing to do.
if [ "$(status_of /users/current.json)" = 200 ]; then
  log "reusing the server at $BASE"
  print_exports
  exit 0
fi

[ "$(id -u)" = 0 ] || fail "Redmine is not answering at $BASE and setting it up needs root"

# WORKAROUND 1: ruby3.1 3.1.7-1~deb12u2 ships a default bundler 2.3.27 that rejects Debian's gems
# lacking a /usr/share/rubygems-integration/all/gems/<name> directory (rotp, mail, ...): redmine's
# postinst fails with "Could not find rotp-6.2.0.gem for installation". Debian's own bundler works.
export BUNDLER_VERSION=2.3.15
export DEBIAN_FRONTEND=noninteractive

mkdir -p "$DIR"
chown www-data:www-data "$DIR"
chmod 755 "$DIR"

installed() {
  [ "$(dpkg-query -W -f='${Status}\n' redmine redmine-sqlite 2>/dev/null | grep -c '^install ok installed$')" = 2 ]
}
if installed; then
  log "packages redmine and redmine-sqlite already installed"
else
  log "installing redmine and redmine-sqlite (apt-get, a few minutes)"
  apt-get update -qq >"$DIR/apt-update.log" 2>&1 || { cat "$DIR/apt-update.log" >&2; fail "apt-get update failed"; }
  # One default instance on SQLite, English default data (trackers, statuses, workflows).
  debconf-set-selections <<'EOF'
redmine redmine/current-instances string default
redmine redmine/instances/default/dbconfig-install boolean true
redmine redmine/instances/default/database-type select sqlite3
redmine redmine/instances/default/default-language select en
EOF
  # --no-install-recommends keeps passenger and apache out; the postinst migrates the database
  # and loads the default data.
  apt-get install -y -qq --no-install-recommends redmine redmine-sqlite >"$DIR/apt.log" 2>&1 \
    || { tail -n 60 "$DIR/apt.log" >&2; fail "apt-get install redmine redmine-sqlite failed (log: $DIR/apt.log)"; }
fi

# WORKAROUND 2: Redmine's bundle has no application server (webrick left Ruby's standard library
# in 3.0), so add it through the Gemfile.local hook; Debian packages it (ruby-webrick).
if ! grep -qs "gem 'webrick'" "$REDMINE_HOME/Gemfile.local"; then
  echo "gem 'webrick'" >>"$REDMINE_HOME/Gemfile.local"
fi
AS_WWW=(setpriv --reuid=www-data --regid=www-data --init-groups
        env HOME="$DIR" RAILS_ENV=production REDMINE_INSTANCE=default BUNDLER_VERSION="$BUNDLER_VERSION")
cd "$REDMINE_HOME"
"${AS_WWW[@]}" bundle install --local --quiet >"$DIR/bundle.log" 2>&1 \
  || { cat "$DIR/bundle.log" >&2; fail "bundle install --local failed"; }

# The REST API on, the admin no longer forced to change the password, and the admin's API key
# (created on first read) written for the tests.
log "enabling the REST API"
"${AS_WWW[@]}" bundle exec rails runner '
  Setting.rest_api_enabled = "1"
  admin = User.find_by_login("admin")
  admin.must_change_passwd = false
  admin.save!
  File.write(ARGV[0], admin.api_key)' "$KEY_FILE" >"$DIR/runner.log" 2>&1 \
  || { cat "$DIR/runner.log" >&2; fail "could not enable the REST API"; }
chmod 600 "$KEY_FILE"

if [ "$(status_of /)" != 200 ]; then
  log "starting Redmine on $BASE"
  # WORKAROUND 3: `rails server` wants to create /usr/share/redmine/tmp (not writable by
  # www-data), so serve config.ru with rackup instead. setsid: the server outlives this script
  # and the CI step that ran it (a later run reuses it).
  setsid "${AS_WWW[@]}" bundle exec rackup -s webrick -o 127.0.0.1 -p "$PORT" -E production config.ru \
    </dev/null >"$DIR/server.log" 2>&1 &
  echo $! >"$DIR/server.pid"
  for _ in $(seq 1 600); do
    [ "$(status_of /)" = 200 ] && break
    kill -0 "$(cat "$DIR/server.pid")" 2>/dev/null || { cat "$DIR/server.log" >&2; fail "Redmine exited while starting"; }
    sleep 0.2
  done
fi
[ "$(status_of /)" = 200 ] || { tail -n 40 "$DIR/server.log" >&2; fail "Redmine did not answer at $BASE within 2 minutes"; }
code="$(status_of /users/current.json)"
[ "$code" = 200 ] || fail "Redmine answers at $BASE but refuses the admin's API key (HTTP $code)"
log "ready at $BASE (pid $(cat "$DIR/server.pid" 2>/dev/null || echo '?'), logs in $DIR)"
print_exports
