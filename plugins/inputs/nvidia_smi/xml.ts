// A small XML reader for `nvidia-smi -q -x`: elements, attributes, text,
// the five predefined entities and numeric character references, CDATA, and
// the prolog nvidia-smi writes (<?xml ?>, <!DOCTYPE ...>), comments and
// processing instructions skipped. No namespaces, no DTD expansion. Enough for
// nvidia-smi's flat, machine-written documents, and strict about structure:
// a mismatched or unclosed tag (e.g. output cut short by a timeout) throws.

import { own } from '../../../core/own.ts';

export interface XmlElement {
  name: string;
  attributes: Record<string, string>;
  children: XmlElement[];
  /** The element's own text (trimmed), children's text excluded. */
  text: string;
}

export class XmlError extends Error {
  override name = 'XmlError';
}

const ENTITIES: Record<string, string> = { amp: '&', lt: '<', gt: '>', quot: '"', apos: "'" };

/** Replaces entities; an `&` that starts none is kept as written (nvidia-smi has been seen to leave `&` unescaped in process names). */
export function decodeEntities(text: string): string {
  if (!text.includes('&')) return text;
  return text.replace(/&(#x[0-9a-fA-F]+|#[0-9]+|[a-zA-Z]+);/g, (whole, ref: string) => {
    if (ref[0] === '#') {
      const code = ref[1] === 'x' ? parseInt(ref.slice(2), 16) : parseInt(ref.slice(1), 10);
      return Number.isFinite(code) && code >= 0 && code <= 0x10ffff ? String.fromCodePoint(code) : whole;
    }
    return own(ENTITIES, ref) ?? whole; // not `&constructor;` from the prototype
  });
}

const NAME = /[A-Za-z_:][-A-Za-z0-9_:.]*/y;
const ATTR = /\s*([A-Za-z_:][-A-Za-z0-9_:.]*)\s*=\s*(?:"([^"]*)"|'([^']*)')/y;

/** Parses a whole document and returns its root element. */
export function parseXml(source: string): XmlElement {
  const text = source.charCodeAt(0) === 0xfeff ? source.slice(1) : source;
  const stack: Array<XmlElement & { parts: string[] }> = [];
  let root: XmlElement | undefined;
  let i = 0;
  const lineAt = (pos: number) => text.slice(0, pos).split('\n').length;
  const fail = (message: string, pos = i): never => {
    throw new XmlError(`${message} (line ${lineAt(pos)})`);
  };
  const skipPast = (terminator: string, what: string) => {
    const end = text.indexOf(terminator, i);
    if (end < 0) fail(`unterminated ${what}`);
    i = end + terminator.length;
  };

  while (i < text.length) {
    const lt = text.indexOf('<', i);
    const chunk = lt < 0 ? text.slice(i) : text.slice(i, lt);
    if (chunk) {
      const top = stack[stack.length - 1];
      if (top) top.parts.push(chunk);
      else if (chunk.trim()) fail('text outside the root element');
    }
    if (lt < 0) break;
    i = lt;

    if (text.startsWith('<!--', i)) {
      skipPast('-->', 'comment');
    } else if (text.startsWith('<![CDATA[', i)) {
      const end = text.indexOf(']]>', i);
      if (end < 0) fail('unterminated CDATA section');
      const top = stack[stack.length - 1];
      if (!top) fail('CDATA outside the root element');
      // Kept raw: marked so that entity decoding leaves it alone.
      top!.parts.push(`\u0000${text.slice(i + 9, end)}`);
      i = end + 3;
    } else if (text.startsWith('<?', i)) {
      skipPast('?>', 'processing instruction');
    } else if (text.startsWith('<!', i)) {
      // DOCTYPE (with an optional internal subset in brackets) or another declaration.
      let depth = 0;
      let j = i + 2;
      for (; j < text.length; j++) {
        const c = text[j];
        if (c === '[') depth++;
        else if (c === ']') depth--;
        else if (c === '>' && depth <= 0) break;
      }
      if (j >= text.length) fail('unterminated declaration');
      i = j + 1;
    } else if (text[i + 1] === '/') {
      if (text.indexOf('>', i) < 0) fail(`a tag is cut short at the end of the input (output cut short?)`, text.length);
      NAME.lastIndex = i + 2;
      const m = NAME.exec(text);
      if (!m) fail('malformed end tag');
      const name = m![0];
      let j = NAME.lastIndex;
      while (j < text.length && /\s/.test(text[j]!)) j++;
      if (text[j] !== '>') fail(`malformed end tag </${name}`);
      const open = stack.pop();
      if (!open) fail(`end tag </${name}> without a start tag`);
      if (open!.name !== name) fail(`end tag </${name}> does not close <${open!.name}>`);
      finish(open!);
      i = j + 1;
    } else {
      if (text.indexOf('>', i) < 0) fail(`a tag is cut short at the end of the input (output cut short?)`, text.length);
      NAME.lastIndex = i + 1;
      const m = NAME.exec(text);
      if (!m) fail('malformed start tag');
      const element: XmlElement & { parts: string[] } = { name: m![0], attributes: {}, children: [], text: '', parts: [] };
      let j = NAME.lastIndex;
      for (;;) {
        ATTR.lastIndex = j;
        const a = ATTR.exec(text);
        if (!a) break;
        element.attributes[a[1]!] = decodeEntities(a[2] ?? a[3] ?? '');
        j = ATTR.lastIndex;
      }
      while (j < text.length && /\s/.test(text[j]!)) j++;
      const selfClosing = text[j] === '/' && text[j + 1] === '>';
      if (!selfClosing && text[j] !== '>') fail(`malformed start tag <${element.name}`);
      i = j + (selfClosing ? 2 : 1);
      const parent = stack[stack.length - 1];
      if (parent) parent.children.push(element);
      else if (root) fail(`a second root element <${element.name}>`);
      else root = element;
      if (selfClosing) finish(element);
      else stack.push(element);
    }
  }
  if (stack.length) fail(`<${stack[stack.length - 1]!.name}> is not closed (output cut short?)`, text.length);
  if (!root) fail('no root element', 0);
  return root!;
}

function finish(element: XmlElement & { parts?: string[] }): void {
  const raw = (element.parts ?? []).map((p) => (p.startsWith('\u0000') ? p.slice(1) : decodeEntities(p))).join('');
  element.text = raw.trim();
  delete element.parts;
}

/** The first child named `name`, following a path of names (`child(gpu, 'fb_memory_usage', 'used')`). */
export function child(element: XmlElement | undefined, ...path: string[]): XmlElement | undefined {
  let at = element;
  for (const name of path) {
    if (!at) return undefined;
    at = at.children.find((c) => c.name === name);
  }
  return at;
}

/** Every child named `name`. */
export function childrenNamed(element: XmlElement | undefined, name: string): XmlElement[] {
  return element ? element.children.filter((c) => c.name === name) : [];
}

/** The text at a path, or undefined when an element on the path is missing. */
export function textAt(element: XmlElement | undefined, ...path: string[]): string | undefined {
  return child(element, ...path)?.text;
}
