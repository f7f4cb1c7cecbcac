/**
 * `vigil completion bash|zsh|fish`: shell completion generated from the command table (commands.ts). Each
 * command's subcommands and options are read from its help, the text users see, so a command's
 * completion lists what its help lists; an option's value is completed from its placeholder there
 * (`FILE` → files, `DIR` → directories, `a|b|c` → those words, anything else → nothing).
 */
import { parse, out, EXIT_OK, UsageError, type CommandEntry } from "./args.ts";
import { ACCESS_LEVELS, SUBJECT_KINDS } from "../policy/model.ts";

export const help = `Usage: vigil completion bash|zsh|fish

Prints a completion script for the shell: commands, subcommands, options and
option values (files for FILE, words for a|b|c).

  bash:  vigil completion bash > /etc/bash_completion.d/vigil
         (or: source <(vigil completion bash) in ~/.bashrc)
  zsh:   vigil completion zsh > "\${fpath[1]}/_vigil"   (then: compinit)
         (or: source <(vigil completion zsh) in ~/.zshrc, after compinit)
  fish:  vigil completion fish > ~/.config/fish/completions/vigil.fish`;

const SHELLS = ["bash", "zsh", "fish"] as const;
type Shell = (typeof SHELLS)[number];

/** What an option's value is completed from. */
export type ValueKind = { kind: "none" } | { kind: "file" } | { kind: "dir" } | { kind: "words"; words: readonly string[] };

export interface OptionSpec {
  /** `--name`, without the dashes. */
  readonly long?: string;
  /** `-x`, without the dash. */
  readonly short?: string;
  /** Undefined for a flag. */
  readonly value?: ValueKind;
}

export interface CommandSpec {
  readonly name: string;
  readonly summary: string;
  readonly subcommands: readonly string[];
  readonly options: readonly OptionSpec[];
}

export async function completion(argv: string[], commands: Readonly<Record<string, CommandEntry>>): Promise<number> {
  const { positionals } = parse(argv, {}, true);
  const shell = positionals[0];
  if (positionals.length !== 1 || !(SHELLS as readonly (string | undefined)[]).includes(shell)) throw new UsageError(`completion takes one shell: ${SHELLS.join(", ")}`);
  out(script(shell as Shell, await commandSpecs(commands)));
  return EXIT_OK;
}

export function script(shell: Shell, specs: readonly CommandSpec[]): string {
  return shell === "bash" ? bashScript(specs) : shell === "zsh" ? zshScript(specs) : fishScript(specs);
}

/** Every command of the table with the subcommands and options its help lists. */
export async function commandSpecs(commands: Readonly<Record<string, CommandEntry>>): Promise<CommandSpec[]> {
  const specs: CommandSpec[] = [];
  for (const [name, entry] of Object.entries(commands)) {
    const { help: text } = await entry.load();
    specs.push({ name, summary: entry.summary, ...parseHelp(name, text) });
  }
  return specs;
}

const FILE_PLACEHOLDERS = new Set(["FILE", "PATH", "LEAF"]);
const DIR_PLACEHOLDERS = new Set(["DIR"]);
/** Placeholders that stand for one of vigil's fixed sets of words. */
const WORD_PLACEHOLDERS: Readonly<Record<string, readonly string[]>> = { LEVEL: ACCESS_LEVELS, KIND: SUBJECT_KINDS };
/** An option: a short or long name after a space or bracket, and its value placeholder if any. */
const OPTION_RE = /(?<=^|[\s[(,|/])(?:-([a-zA-Z])|--([a-z][a-z0-9-]*))(?:(?:[ =])((?:[A-Z][A-Z0-9_]*(?::[A-Z]+)?)(?:\|-)?|[a-z0-9_]+(?:\|[a-z0-9_-]+)+))?(?=$|[\s\]),.|/])/gm;
/** `-x, --long`, `-x/--long` or `-x | --long`: two names of one option. */
const PAIR_RE = /(?<=^|[\s[(])-([a-zA-Z])(?:, |\/| \| )--([a-z][a-z0-9-]*)/gm;

/** The subcommands and options a command's help lists; `-h/--help` always. */
export function parseHelp(command: string, text: string): { subcommands: string[]; options: OptionSpec[] } {
  const subcommands: string[] = [];
  const sub = new RegExp(`\\bvigil ${command} ([a-z][a-z-]*(?:\\|[a-z][a-z-]*)*)(?=\\s|$)`, "gm");
  for (const m of text.matchAll(sub)) for (const name of m[1]!.split("|")) if (!subcommands.includes(name)) subcommands.push(name);

  const pairs = new Map<string, string>();
  for (const m of text.matchAll(PAIR_RE)) pairs.set(m[2]!, m[1]!);
  const shortOf = new Map([...pairs].map(([long, short]) => [short, long]));
  const byKey = new Map<string, { long?: string; short?: string; value?: ValueKind }>();
  const entry = (long: string | undefined, short: string | undefined) => {
    const key = long ?? (short !== undefined ? (shortOf.get(short) ?? `-${short}`) : "");
    let e = byKey.get(key);
    if (!e) {
      e = {};
      byKey.set(key, e);
    }
    const l = long ?? (short !== undefined ? shortOf.get(short) : undefined);
    const s = short ?? (long !== undefined ? pairs.get(long) : undefined);
    if (l !== undefined) e.long = l;
    if (s !== undefined) e.short = s;
    return e;
  };
  for (const m of text.matchAll(OPTION_RE)) {
    const e = entry(m[2], m[1]);
    const placeholder = m[3];
    if (placeholder !== undefined && e.value === undefined) e.value = valueKind(placeholder);
  }
  entry("help", "h");
  const options = [...byKey.values()].map((e) => ({ ...(e.long ? { long: e.long } : {}), ...(e.short ? { short: e.short } : {}), ...(e.value ? { value: e.value } : {}) }));
  return { subcommands, options };
}

function valueKind(placeholder: string): ValueKind {
  if (placeholder.includes("|") && placeholder === placeholder.toLowerCase()) return { kind: "words", words: placeholder.split("|") };
  const word = placeholder.replace(/\|-$/, "").replace(/:.*$/, "");
  if (FILE_PLACEHOLDERS.has(word)) return { kind: "file" };
  if (DIR_PLACEHOLDERS.has(word)) return { kind: "dir" };
  const words = Object.hasOwn(WORD_PLACEHOLDERS, word) ? WORD_PLACEHOLDERS[word] : undefined;
  if (words) return { kind: "words", words };
  return { kind: "none" };
}

const names = (o: OptionSpec) => [...(o.short ? [`-${o.short}`] : []), ...(o.long ? [`--${o.long}`] : [])];

/** Single-quoted for bash, zsh and fish: help text never needs more than that. */
function quote(text: string): string {
  return `'${text.replace(/'/g, `'\\''`)}'`;
}

export function bashScript(specs: readonly CommandSpec[]): string {
  const commands = specs.map((s) => s.name).join(" ");
  const perCommand = specs
    .map((s) => {
      const values = s.options
        .filter((o) => o.value !== undefined)
        .map((o) => {
          const pattern = names(o).join("|");
          const v = o.value!;
          const action =
            v.kind === "file"
              ? `compopt -o filenames 2>/dev/null; COMPREPLY=( $(compgen -f -- "$cur") ); return ;;`
              : v.kind === "dir"
                ? `compopt -o filenames 2>/dev/null; COMPREPLY=( $(compgen -d -- "$cur") ); return ;;`
                : v.kind === "words"
                  ? `COMPREPLY=( $(compgen -W ${quote(v.words.join(" "))} -- "$cur") ); return ;;`
                  : `compopt +o default 2>/dev/null; return ;;`;
          return `                ${pattern}) ${action}`;
        });
      return [
        `        ${s.name})`,
        `            opts=${quote(s.options.flatMap(names).join(" "))}`,
        `            subs=${quote(s.subcommands.join(" "))}`,
        ...(values.length > 0 ? ['            case "$prev" in', ...values, "            esac"] : []),
        "            ;;",
      ].join("\n");
    })
    .join("\n");
  return `# bash completion for vigil, generated by \`vigil completion bash\`.
# Install: vigil completion bash > /etc/bash_completion.d/vigil
#     or:  source <(vigil completion bash)   (in ~/.bashrc)
_vigil() {
    local cur prev cmd opts subs
    cur="\${COMP_WORDS[COMP_CWORD]}"
    prev="\${COMP_WORDS[COMP_CWORD-1]}"
    if (( COMP_CWORD == 1 )); then
        COMPREPLY=( $(compgen -W ${quote(`${commands} --help --version`)} -- "$cur") )
        return
    fi
    cmd="\${COMP_WORDS[1]}"
    case "$cmd" in
${perCommand}
        *) return ;;
    esac
    if [[ "$cur" == -* ]]; then
        COMPREPLY=( $(compgen -W "$opts" -- "$cur") )
        return
    fi
    if (( COMP_CWORD == 2 )) && [[ -n "$subs" ]]; then
        COMPREPLY=( $(compgen -W "$subs" -- "$cur") )
        return
    fi
    # Anything else (a file, a subject id): the shell's default completion.
}
complete -o default -F _vigil vigil`;
}

export function zshScript(specs: readonly CommandSpec[]): string {
  const described = specs.map((s) => `    ${quote(`${s.name}:${s.summary.replace(/:/g, "\\:")}`)}`).join("\n");
  const perCommand = specs
    .map((s) => {
      const values = s.options
        .filter((o) => o.value !== undefined)
        .map((o) => {
          const v = o.value!;
          const action = v.kind === "file" ? "_files" : v.kind === "dir" ? "_files -/" : v.kind === "words" ? `compadd -- ${v.words.join(" ")}` : ":";
          return `                (${names(o).join("|")}) ${action}; return ;;`;
        });
      return [
        `        (${s.name})`,
        `            opts=(${s.options.flatMap(names).join(" ")})`,
        `            subs=(${s.subcommands.join(" ")})`,
        ...(values.length > 0 ? ['            case "$prev" in', ...values, "            esac"] : []),
        "            ;;",
      ].join("\n");
    })
    .join("\n");
  return `#compdef vigil
# zsh completion for vigil, generated by \`vigil completion zsh\`.
# Install: vigil completion zsh > "\${fpath[1]}/_vigil"   (then run compinit)
#     or:  source <(vigil completion zsh)   (in ~/.zshrc, after compinit)
_vigil() {
    local -a commands opts subs
    local cmd prev
    commands=(
${described}
    )
    if (( CURRENT == 2 )); then
        _describe -t commands 'vigil command' commands
        compadd -- --help --version
        return
    fi
    cmd=\${words[2]}
    prev=\${words[CURRENT-1]}
    case "$cmd" in
${perCommand}
        (*) return ;;
    esac
    if [[ $PREFIX == -* ]]; then
        compadd -- $opts
        return
    fi
    if (( CURRENT == 3 && \${#subs} > 0 )); then
        compadd -- $subs
        return
    fi
    _files
}
if [[ "\${funcstack[1]}" == _vigil ]]; then
    _vigil "$@"
else
    compdef _vigil vigil
fi`;
}

export function fishScript(specs: readonly CommandSpec[]): string {
  const lines = [
    "# fish completion for vigil, generated by `vigil completion fish`.",
    "# Install: vigil completion fish > ~/.config/fish/completions/vigil.fish",
    "function __vigil_no_command",
    "    test (count (commandline -opc)) -eq 1",
    "end",
    "function __vigil_command_is",
    "    set -l words (commandline -opc)",
    '    test (count $words) -ge 2; and test "$words[2]" = "$argv[1]"',
    "end",
    "function __vigil_wants_subcommand",
    "    set -l words (commandline -opc)",
    '    test (count $words) -eq 2; and test "$words[2]" = "$argv[1]"',
    "end",
    "complete -c vigil -n __vigil_no_command -f -s h -l help -d 'show help'",
    "complete -c vigil -n __vigil_no_command -f -s v -l version -d 'print the version'",
  ];
  for (const s of specs) lines.push(`complete -c vigil -n __vigil_no_command -f -a ${s.name} -d ${quote(s.summary)}`);
  for (const s of specs) {
    if (s.subcommands.length > 0) lines.push(`complete -c vigil -n ${quote(`__vigil_wants_subcommand ${s.name}`)} -f -a ${quote(s.subcommands.join(" "))}`);
    for (const o of s.options) {
      const flags = [...(o.short ? [`-s ${o.short}`] : []), ...(o.long ? [`-l ${o.long}`] : [])].join(" ");
      const v = o.value;
      const value =
        v === undefined ? "" : v.kind === "file" ? " -r -F" : v.kind === "dir" ? " -x -a '(__fish_complete_directories (commandline -ct))'" : v.kind === "words" ? ` -x -a ${quote(v.words.join(" "))}` : " -x";
      lines.push(`complete -c vigil -n ${quote(`__vigil_command_is ${s.name}`)} ${flags}${value}`);
    }
  }
  return lines.join("\n");
}
