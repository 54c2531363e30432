# SPDX-License-Identifier: MIT
"""`tinyctrl completion bash`: a bash completion script made from the parser itself, so it
always offers the commands and options there are."""

import argparse

TEMPLATE = """# tinyctrl's bash completion: eval "$(tinyctrl completion bash)" in ~/.bashrc
_tinyctrl() {
    local cur="${COMP_WORDS[COMP_CWORD]}" path="" w opts
    for w in "${COMP_WORDS[@]:1:COMP_CWORD-1}"; do
        case " %(paths)s " in *" ${path:+$path.}$w "*) path="${path:+$path.}$w";; esac
    done
    case "$path" in
%(cases)s
    esac
    COMPREPLY=($(compgen -W "$opts" -- "$cur"))
}
complete -o default -F _tinyctrl tinyctrl
"""


def _walk(p, path, out):
    """(command path, words it takes next) for `p` and each sub-parser below it."""
    words = []
    for action in p._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, child in action.choices.items():
                words.append(name)
                _walk(child, path + [name], out)
        else:
            words += [o for o in action.option_strings if o.startswith("--")]
    out.append((".".join(path), words))
    return out


def bash(parser):
    found = _walk(parser, [], [])
    cases = "\n".join(
        '        "%s") opts="%s";;' % (path, " ".join(words)) for path, words in found
    )
    paths = " ".join(path for path, _ in found if path)
    return TEMPLATE % {"paths": paths, "cases": cases}


def add_command(sub, parser):
    done = sub.add_parser(
        "completion",
        help="print a shell completion script",
        description="print a shell completion script",
        epilog='example: eval "$(tinyctrl completion bash)"',
    )
    done.add_argument("shell", choices=("bash",))
    done.set_defaults(func=lambda args: print(bash(parser), end="") or 0)
