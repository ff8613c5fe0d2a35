/** Brand used to recognise our reference objects across bundles (symbol registry, not identity). */
export const WAFFLE_BRAND: unique symbol = Symbol.for('wafflemaker.brand') as never;
