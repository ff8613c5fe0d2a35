/**
 * Who may read the agent's page. Three ways in, from the agent's settings:
 * - `open`: anyone who reaches the agent's address (behind a VPN, or a page meant to be public);
 * - a bearer token (`Authorization: Bearer …`): the management token or the read-only page token;
 * - a browser cookie set by the sign-in form after it was given one of those tokens.
 * The cookie holds an HMAC of the token, not the token: HttpOnly, SameSite=Strict, Secure when the
 * agent is reached over https. Tokens never go in a URL (they would end up in logs and histories).
 * The read-only token opens the page only; the management API keeps asking for the management token.
 */
import { createHash, createHmac, timingSafeEqual } from 'node:crypto';

export interface PageAccess {
  /** The management token (opens the page too). */
  token?: string;
  /** A token that opens the page and nothing else. */
  readToken?: string;
  /** Anyone may read the page. */
  open?: boolean;
}

export const COOKIE = 'waffle_page';
/** How long a signed-in browser stays signed in. */
export const COOKIE_MAX_AGE_S = 30 * 24 * 3600;

const digest = (s: string) => createHash('sha256').update(s).digest();

function same(a: string, b: string): boolean {
  return timingSafeEqual(digest(a), digest(b));
}

/** The cookie value a token stands for. */
export function sessionValue(token: string): string {
  return createHmac('sha256', token).update('wafflemaker agent page session v1').digest('base64url');
}

function tokens(a: PageAccess): string[] {
  return [a.token, a.readToken].filter((t): t is string => typeof t === 'string' && t.length > 0);
}

/** Whether `given` is one of the tokens that open the page (constant time per token). */
export function tokenOpensPage(a: PageAccess, given: string): boolean {
  let ok = false;
  for (const t of tokens(a)) ok = same(given, t) || ok;
  return ok;
}

export function cookieValue(header: string | undefined, name: string): string | undefined {
  for (const part of (header ?? '').split(';')) {
    const i = part.indexOf('=');
    if (i !== -1 && part.slice(0, i).trim() === name) return part.slice(i + 1).trim();
  }
  return undefined;
}

/** Whether a request with these headers may read the page. */
export function mayRead(a: PageAccess, headers: { authorization?: string | undefined; cookie?: string | undefined }): boolean {
  if (a.open) return true;
  const bearer = /^Bearer\s+(.+)$/i.exec(headers.authorization ?? '');
  if (bearer && tokenOpensPage(a, bearer[1]!.trim())) return true;
  const cookie = cookieValue(headers.cookie, COOKIE);
  if (!cookie) return false;
  let ok = false;
  for (const t of tokens(a)) ok = same(cookie, sessionValue(t)) || ok;
  return ok;
}

export function setCookie(token: string, secure: boolean): string {
  return `${COOKIE}=${sessionValue(token)}; Path=/; Max-Age=${COOKIE_MAX_AGE_S}; HttpOnly; SameSite=Strict${secure ? '; Secure' : ''}`;
}

export function clearCookie(secure: boolean): string {
  return `${COOKIE}=; Path=/; Max-Age=0; HttpOnly; SameSite=Strict${secure ? '; Secure' : ''}`;
}

/** A path on this agent to go to after signing in (never another site). */
export function safeNext(next: unknown): string {
  return typeof next === 'string' && /^\/(?![/\\])[\x21-\x7e]*$/.test(next) ? next : '/';
}
