"""``nnspec completion bash|zsh``: a completion script written from the parser itself, so that
new subcommands and options complete without anyone editing a script."""

from __future__ import annotations

import argparse

from .help_text import subparsers


def _options(parser: argparse.ArgumentParser) -> list[str]:
    return sorted(o for a in parser._actions for o in a.option_strings if o.startswith("--"))


def _choices(parser: argparse.ArgumentParser) -> list[str]:
    """Positional choices (``completion bash|zsh``) and nested subcommands (``plot history``)."""
    out: list[str] = []
    for a in parser._actions:
        if not a.option_strings and a.choices:
            out += list(a.choices)
    return out


def bash_script(parser: argparse.ArgumentParser) -> str:
    subs = subparsers(parser)
    cases = [
        f'        {name}) choices="{" ".join(_choices(sub))}"; opts="{" ".join(_options(sub))}" ;;'
        for name, sub in sorted(subs.items())
    ]
    commands = " ".join(sorted(subs))
    return "\n".join(
        [
            '# nnspec completion for bash: eval "$(nnspec completion bash)"',
            "_nnspec() {",
            "    local cur=${COMP_WORDS[COMP_CWORD]} choices opts",
            '    if [ "$COMP_CWORD" -eq 1 ]; then',
            f'        COMPREPLY=($(compgen -W "{commands} --help --version" -- "$cur"))',
            "        return 0",
            "    fi",
            '    case "${COMP_WORDS[1]}" in',
            *cases,
            '        *) choices=""; opts="" ;;',
            "    esac",
            '    if [[ "$cur" == -* ]]; then',
            '        COMPREPLY=($(compgen -W "$opts --help" -- "$cur"))',
            '    elif [ "$COMP_CWORD" -eq 2 ] && [ -n "$choices" ]; then',
            '        COMPREPLY=($(compgen -W "$choices" -- "$cur"))',
            "    else",
            '        COMPREPLY=($(compgen -f -- "$cur"))  # specs, models, data',
            "    fi",
            "    return 0",
            "}",
            "complete -o filenames -F _nnspec nnspec",
            "",
        ]
    )


def zsh_script(parser: argparse.ArgumentParser) -> str:
    # zsh runs bash completion functions through bashcompinit: one script to keep right.
    return (
        '# nnspec completion for zsh: eval "$(nnspec completion zsh)"\n'
        "autoload -U +X compinit && compinit\n"
        "autoload -U +X bashcompinit && bashcompinit\n" + bash_script(parser)
    )


def add_parser(sub, root: argparse.ArgumentParser) -> None:
    """``root``: the whole command's parser, which the script is written from."""
    s = sub.add_parser("completion", help="print a shell completion script (bash or zsh)")
    s.add_argument("shell", choices=["bash", "zsh"], help="the shell to complete in")
    s.set_defaults(func=completion_command, root_parser=root)


def completion_command(args) -> int:
    p = args.root_parser
    print(bash_script(p) if args.shell == "bash" else zsh_script(p), end="")
    return 0
