/**
 * The reference grammar of github.com/distribution/reference, as regular expressions.
 * Internal to src/reference: other folders use the parsers in index.ts.
 *
 * ```
 * reference        := name [ ":" tag ] [ "@" digest ]
 * name             := [domain "/"] remote-name
 * domain           := host [":" port-number]
 * host             := domain-name | "[" IPv6address "]"
 * domain-name      := domain-component ("." domain-component)*
 * domain-component := [a-zA-Z0-9] | [a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9]
 * port-number      := [0-9]+
 * remote-name      := path-component ("/" path-component)*
 * path-component   := [a-z0-9]+ (separator [a-z0-9]+)*
 * separator        := [._] | "__" | "-"+
 * tag              := [\w][\w.-]{0,127}
 * digest           := algorithm ":" hex{32,}
 * identifier       := [a-f0-9]{64}
 * ```
 *
 * Go's RE2 and JavaScript's backtracking engine agree on these patterns, including the
 * submatches: both prefer the leftmost alternative and greedy repetition. Backtracking
 * stays linear here because every repetition is anchored by a mandatory separator
 * (".", "/", "-", "_") or a bounded count, so no input can be split two ways; the
 * long-input tests in reference.test.ts guard that property.
 */

const alphanumeric = '[a-z0-9]+';
const separator = '(?:[._]|__|[-]+)';
const pathComponent = `${alphanumeric}(?:${separator}${alphanumeric})*`;
const remoteName = `${pathComponent}(?:/${pathComponent})*`;

const domainNameComponent = '(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])';
const domainName = `${domainNameComponent}(?:\\.${domainNameComponent})*`;
// The brackets are required; the content is checked loosely, as upstream does: a bad
// address such as "[fd00123]" passes here and fails when the registry is dialled.
const ipv6Address = '\\[(?:[a-fA-F0-9:]+)\\]';
const host = `(?:${domainName}|${ipv6Address})`;
const domainAndPort = `${host}(?::[0-9]+)?`;

const tag = '[\\w][\\w.-]{0,127}';
const digest = '[A-Za-z][A-Za-z0-9]*(?:[-_+.][A-Za-z][A-Za-z0-9]*)*[:][0-9a-fA-F]{32,}';
const name = `(?:${domainAndPort}/)?${remoteName}`;

/** `^domainAndPort$`: a registry host with an optional port. */
export const anchoredDomainRegexp: RegExp = new RegExp(`^${domainAndPort}$`);

/** `^(?:(domain)/)?(remote-name)$`: groups 1 and 2 are the domain (may be absent) and path. */
export const anchoredNameRegexp: RegExp = new RegExp(`^(?:(${domainAndPort})/)?(${remoteName})$`);

/** `^(name)(?::(tag))?(?:@(digest))?$`: groups 1, 2 and 3 are name, tag and digest. */
export const referenceRegexp: RegExp = new RegExp(`^(${name})(?::(${tag}))?(?:@(${digest}))?$`);

/** `^tag$`. */
export const anchoredTagRegexp: RegExp = new RegExp(`^${tag}$`);

/** `^digest$`: the syntax only; algorithm and length are checked by the parser. */
export const anchoredDigestRegexp: RegExp = new RegExp(`^${digest}$`);

/** `^[a-f0-9]{64}$`: an image ID, a sha256 digest without its algorithm. */
export const anchoredIdentifierRegexp: RegExp = /^[a-f0-9]{64}$/;
