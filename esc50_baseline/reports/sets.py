"""--show_sets: the parameter sets of the YAML, the active one marked."""


def show_sets(parameters):
    print(f"Parameter sets in {parameters.path}:")
    for set_id, entry in parameters.sets.items():
        mark = "*" if set_id == parameters.active_set else " "
        members = f" (ensemble of {', '.join(entry['ensemble'])})" if entry["ensemble"] else ""
        print(f" {mark} {set_id:<16} {entry['description']}{members}")
    print("(* = active_set; run another with --set NAME)")
