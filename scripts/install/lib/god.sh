# go.d.plugin's own systemdunits collector, side by side with this plugin (sourced by install.sh).
# go.d (v2 agents: on by default for *.service) charts one chart per unit under the same contexts
# this plugin uses (systemd.<type>_unit_state). The installer says what it found; only with
# --replace-go-d it turns go.d's collector off, the way go.d users do: `systemdunits: no` under
# `modules:` in the user's go.d.conf (copied from the stock one if the user has none, as
# edit-config does). The record in the install state lets --uninstall put the file back.
# Needs: god_plugin, god_stock_conf, god_user_conf, replace_god, group, app, old_state, record.

# 0 when the go.d.conf $1 leaves the systemdunits module off.
god_conf_off() {
  local f=$1
  [ -f "$f" ] || return 1
  grep -Eq '^enabled:[[:space:]]*(no|false)' "$f" && return 0
  grep -Eq '^[[:space:]]+systemdunits:[[:space:]]*(no|false)' "$f" && return 0
  grep -Eq '^default_run:[[:space:]]*(no|false)' "$f" && ! grep -Eq '^[[:space:]]+systemdunits:[[:space:]]*(yes|true)' "$f"
}

# go.d.conf (stdin) with `systemdunits: no` under `modules:` (stdout); the commented or set entry
# is replaced in place, so the file stays the stock file plus one changed line.
god_conf_turn_off() {
  awk '
    /^modules:[[:space:]]*$/ { print; inmod = 1; next }
    inmod && /^[^[:space:]#]/ { if (!done) { print "  systemdunits: no"; done = 1 } inmod = 0 }
    inmod && /^[[:space:]]*#?[[:space:]]*systemdunits:/ { if (!done) { print "  systemdunits: no"; done = 1 } next }
    { print }
    END { if (!done) { if (!inmod) print "modules:"; print "  systemdunits: no" } }'
}

god_apply() {
  local effective=$god_user_conf base
  [ -f "$effective" ] || effective=$god_stock_conf
  if [ -z "$god_plugin" ] && [ -z "$god_stock_conf" ] && [ ! -f "$god_user_conf" ]; then
    god_note="go.d: no go.d.plugin in this layout, so no go.d systemdunits collector to think of"
    [ $replace_god = no ] || god_note="$god_note (--replace-go-d: nothing to turn off)"
    return 0
  fi
  if [ $replace_god = no ]; then
    if grep -q "^go.d-off " <<<"$old_state"; then
      god_note="go.d: its systemdunits collector stays off (an earlier --replace-go-d; --uninstall turns it back on)"
    elif god_conf_off "$effective"; then
      god_note="go.d: its systemdunits collector is already off in $effective; left as it is"
    else
      god_note="go.d: its systemdunits collector is on (${effective:-defaults}): it charts units too, one chart per unit under the same systemd.<type>_unit_state contexts; left as it is. To keep only this plugin's charts, run again with --replace-go-d"
    fi
    return 0
  fi
  if god_conf_off "$god_user_conf"; then
    god_note="go.d: its systemdunits collector is already off in $god_user_conf; left as it is"
    return 0
  fi
  if [ -f "$god_user_conf" ]; then
    if ! grep -q "^backup $god_user_conf " <<<"$old_state"; then
      cp -p "$god_user_conf" "$app/go.d.conf.orig"; stat -c '%a %u %g' "$god_user_conf" >"$app/go.d.conf.orig.meta"
      record backup "$god_user_conf" go.d.conf.orig
    fi
    god_conf_turn_off <"$god_user_conf" >"$app/go.d.conf.new"
    cat "$app/go.d.conf.new" >"$god_user_conf"; rm -f "$app/go.d.conf.new"   # cat keeps the file's owner and mode
  else
    base=$god_stock_conf
    { if [ -n "$base" ]; then cat "$base"; else printf 'enabled: yes\ndefault_run: yes\n'; fi; } | god_conf_turn_off >"$app/go.d.conf.new"
    install -m 0644 -o root -g "$group" "$app/go.d.conf.new" "$god_user_conf"; rm -f "$app/go.d.conf.new"
    record created-file "$god_user_conf"
  fi
  record go.d-off "$god_user_conf"
  god_note="go.d: turned its systemdunits collector off in $god_user_conf (systemdunits: no); --uninstall turns it back on"
}
