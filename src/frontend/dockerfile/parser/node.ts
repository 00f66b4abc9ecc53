/**
 * The Dockerfile AST, shaped like BuildKit's `parser.Node` so the instruction layer can follow
 * upstream one to one: the root's `children` are the instructions; an instruction's
 * arguments are the `next` chain; ONBUILD's argument is a node whose `children[0]` is the
 * nested instruction.
 */
import { goQuote, goToLower, trimSpace } from '../shell/gotext.ts';

/** One heredoc attached to an instruction (`<<EOF`, `<<-EOF`, `3<<"EOF"`). */
export interface Heredoc {
  /** The delimiter word, quotes removed. */
  name: string;
  /** The body lines, each with its newline; leading tabs are kept even when `chomp`. */
  content: string;
  /** False when any part of the delimiter was quoted: the body is then not expanded. */
  expand: boolean;
  /** `<<-` form: leading tabs are removed from body lines (see `chompHeredocContent`). */
  chomp: boolean;
  /** The `N` of `N<<EOF`; 0 when absent. */
  fileDescriptor: number;
}

/** One node of the AST (see the module comment for how instructions are laid out). */
export interface Node {
  /** The instruction keyword as written (`RUN`, `from`) or one argument. */
  value: string;
  /** The next argument; `undefined` ends the chain. */
  next: Node | undefined;
  /** Root: the instructions. ONBUILD's argument node: the nested instruction. */
  children: Node[];
  /** Heredocs of this instruction, in the order they appear on the line. */
  heredocs: Heredoc[];
  /** `json` is true when the arguments were given in exec (JSON array) form. */
  attributes: { json: boolean };
  /** The instruction line as read, continuation lines joined, heredoc bodies excluded. */
  original: string;
  /** `--name[=value]` flags before the arguments, as written (quotes removed). */
  flags: string[];
  /** 1-based first line of the instruction (root: of the first instruction; -1 when empty). */
  startLine: number;
  /** 1-based last line, heredoc bodies included. */
  endLine: number;
  /** Comment lines directly above the instruction, `#` and surrounding spaces removed. */
  prevComment: string[];
}

/** A fresh node with every list empty; `fields` overrides. */
export function newNode(fields: Partial<Node> = {}): Node {
  return {
    value: '',
    next: undefined,
    children: [],
    heredocs: [],
    attributes: { json: false },
    original: '',
    flags: [],
    startLine: 0,
    endLine: 0,
    prevComment: [],
    ...fields,
  };
}

/**
 * Dumps a node as upstream's `Node.Dump` does: `run ["--flag"] "arg" "arg"` for an
 * instruction, one `(instruction)` per line for the root, ONBUILD nested as
 * `onbuild (run "x")`. The conformance `result` files are the root's dump plus a newline.
 */
export function dumpNode(node: Node): string {
  let s = goToLower(node.value);
  if (node.flags.length > 0) s += ` [${node.flags.map(goQuote).join(' ')}]`;
  for (const child of node.children) s += `(${dumpNode(child)})\n`;
  for (let n = node.next; n !== undefined; n = n.next) {
    s += ' ';
    s += n.children.length > 0 ? dumpNode(n) : goQuote(n.value);
  }
  return trimSpace(s);
}

/**
 * The argument strings of an instruction node, flattened as BuildKit's instruction layer
 * does: ONBUILD yields the nested keyword followed by its arguments.
 */
export function nodeArgs(node: Node): string[] {
  const out: string[] = [];
  for (let n = node.next; n !== undefined; n = n.next) {
    if (n.children.length === 0) {
      out.push(n.value);
    } else if (n.children.length === 1) {
      const sub = n.children[0]!;
      out.push(sub.value, ...nodeArgs(sub));
    }
  }
  return out;
}
