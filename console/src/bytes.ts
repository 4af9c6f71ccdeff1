// Byte helpers: hex, utf8, concatenation.

export function toHex(b: Uint8Array): string {
  let s = "";
  for (let i = 0; i < b.length; i++) s += b[i].toString(16).padStart(2, "0");
  return s;
}

export function fromHex(hex: string, len?: number): Uint8Array {
  const h = hex.trim().toLowerCase().replace(/^0x/, "");
  if (h.length % 2 !== 0 || !/^[0-9a-f]*$/.test(h)) throw new Error("not hex");
  if (len !== undefined && h.length !== len * 2) throw new Error(`expected ${len * 2} hex characters, got ${h.length}`);
  const out = new Uint8Array(h.length / 2);
  for (let i = 0; i < out.length; i++) out[i] = parseInt(h.substr(i * 2, 2), 16);
  return out;
}

export const utf8 = (s: string): Uint8Array => new TextEncoder().encode(s);

export function concat(...parts: Uint8Array[]): Uint8Array {
  let n = 0;
  for (const p of parts) n += p.length;
  const out = new Uint8Array(n);
  let o = 0;
  for (const p of parts) {
    out.set(p, o);
    o += p.length;
  }
  return out;
}

export function isHex32(s: string): boolean {
  return /^[0-9a-f]{64}$/.test(s);
}
