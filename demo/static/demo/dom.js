/** Small DOM helpers shared by the demo's pages. User text only ever goes in as text. */

/** A new element with an optional class and text (set with textContent, never HTML). */
export function el(tag, className, text) {
  const node = document.createElement(tag);
  if (className) node.className = className;
  if (text !== undefined) node.textContent = text;
  return node;
}

export function sleep(ms) {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
