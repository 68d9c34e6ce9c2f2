// Property access by a key that comes from data or config (a JSON field, a
// label name, a group_by key): own properties only, so that "constructor" or
// "toString" never find Object.prototype's members, and "__proto__" is
// stored as data instead of replacing the object's prototype.

/** obj[key] when obj has it as an own property, else undefined. */
export function own<V>(obj: Readonly<Record<string, V>>, key: string): V | undefined {
  return Object.hasOwn(obj, key) ? obj[key] : undefined;
}

/** obj[key] = value, as an own enumerable property whatever the key. */
export function setOwn<V>(obj: Record<string, V>, key: string, value: V): void {
  if (key === '__proto__') Object.defineProperty(obj, key, { value, enumerable: true, writable: true, configurable: true });
  else obj[key] = value;
}
