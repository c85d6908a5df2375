/** Small DOM helpers: elements built with attributes and text, never innerHTML with data. */

export type Attrs = Record<string, string | number>;

const SVG_NS = 'http://www.w3.org/2000/svg';

/** An element the page's HTML must have. */
export function byId(id: string): HTMLElement {
  const e = document.getElementById(id);
  if (e === null) throw new Error(`the page has no #${id}`);
  return e;
}

function setAttrs(e: Element, attrs: Attrs | undefined): void {
  if (attrs) for (const [k, v] of Object.entries(attrs)) e.setAttribute(k, String(v));
}

export function el<K extends keyof HTMLElementTagNameMap>(tag: K, attrs?: Attrs, text?: string): HTMLElementTagNameMap[K] {
  const e = document.createElement(tag);
  setAttrs(e, attrs);
  if (text !== undefined) e.textContent = text;
  return e;
}

export function svg<K extends keyof SVGElementTagNameMap>(tag: K, attrs?: Attrs, text?: string): SVGElementTagNameMap[K] {
  const e = document.createElementNS(SVG_NS, tag);
  setAttrs(e, attrs);
  if (text !== undefined) e.textContent = text;
  return e;
}

/** Writes only on change, so an unchanged figure does not touch the layout. */
export function setText(e: Element, text: string): void {
  if (e.textContent !== text) e.textContent = text;
}

/** A figure's text and its raw value (`data-value`, empty when there is none) for tests and scripts. */
export function setField(e: Element, text: string, value: number | null | undefined): void {
  setText(e, text);
  e.setAttribute('data-value', value === null || value === undefined ? '' : String(value));
}
