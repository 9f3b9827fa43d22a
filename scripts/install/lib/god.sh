# go.d.plugin's own systemdunits collector, side by side with this plugin (sourced by install.sh).
# go.d (v2 agents: on by default for *.service) charts one chart per unit under the contexts this
# plugin uses by default (systemd.<type>_unit_state), with another shape. While it runs, the
# installer gives this plugin's charts contexts of their own (config context_prefix: systemdunits,
# alarms rendered to match, in a health file of their own so go.d's alerts stay as they are). Only
# with --replace-go-d it turns go.d's collector off instead, the way go.d users do: `systemdunits:
# no` under `modules:` in the user's go.d.conf (copied from the stock one if the user has none, as
# edit-config does). The record in the install state lets --uninstall put the file back.
# Needs: god_plugin, god_stock_conf, god_user_conf, replace_god, group, app, old_state, record,
# config_prefix, config_file, health_file.

# The context prefix this plugin's charts want: `systemdunits` while go.d's own collector charts
# systemd.* (present, on, and not turned off by --replace-go-d now or before), else `systemd`.
god_wanted_prefix() {
  local effective=$god_user_conf
  [ -f "$effective" ] || effective=$god_stock_conf
  if [ $replace_god = yes ] || { [ -z "$god_plugin" ] && [ -z "$god_stock_conf" ] && [ ! -f "$god_user_conf" ]; } ||
    grep -q "^go.d-off " <<<"$old_state" || god_conf_off "$effective"; then
    echo systemd
  else
    echo systemdunits
  fi
}

# The shipped systemdunits.conf (stdin) for context prefix $1: `context_prefix: $1` before `jobs:`.
god_config_for_prefix() {
  if [ "$1" = systemd ]; then cat; return; fi
  awk -v p="$1" '
    /^jobs:/ && !done { print "# Beside go.d'"'"'s systemdunits collector (systemd.* contexts), this plugin'"'"'s charts go under"
                        print "# " p ".* contexts (the installer chose it; the alarms follow this top-level key)."
                        print "context_prefix: " p; print ""; done = 1 }
    { print }'
}

# The top-level context_prefix of the config file $1 (`systemd` when it sets none).
god_config_prefix() {
  local p
  p=$(sed -n "s/^context_prefix:[[:space:]]*[\"']\{0,1\}\([a-z][a-z0-9_]*\)[\"']\{0,1\}[[:space:]]*\(#.*\)\{0,1\}\$/\1/p" "$1" | head -n 1)
  echo "${p:-systemd}"
}

# 0 when the config file $1 is one an install wrote and nobody edited (for either prefix).
god_config_is_ours() {
  [ -f "$1" ] || return 1
  cmp -s "$1" "$src/systemdunits.conf" || god_config_for_prefix systemdunits <"$src/systemdunits.conf" | cmp -s "$1" -
}

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
      if [ "$config_prefix" = systemd ]; then
        god_note="go.d: its systemdunits collector is on (${effective:-defaults}) and charts units under systemd.* too, where your $config_file keeps this plugin's charts: the dashboard mixes both there. Add \`context_prefix: systemdunits\` at the top of that file and run the installer again, or run it again with --replace-go-d"
      else
        god_note="go.d: its systemdunits collector is on (${effective:-defaults}), charting units under systemd.*: this plugin's charts go under $config_prefix.* (context_prefix in $config_file), its alarms in $health_file; go.d's charts and alerts are left as they are. To keep systemd.* and turn go.d's collector off instead, run again with --replace-go-d"
      fi
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
