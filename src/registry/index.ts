/** The OCI distribution client: ping, auth, credentials, manifests, blobs, uploads, tags. */

export type { AuthenticatorOptions } from './auth.ts';
export { createAuthenticator } from './auth.ts';
export type { Auth, Authenticator, Challenge, CredentialStore, Scope } from './auth-types.ts';
export { formatScope, parseChallenges, parseScope } from './challenge.ts';
export type { RegistryClientOptions, RepositoryName } from './client.ts';
export { createRegistryClient, defaultUserAgent, RegistryClient } from './client.ts';
export type { CredentialStoreOptions } from './credential-store.ts';
export { createCredentialStore, staticCredentials } from './credential-store.ts';
export type { SavedCredentials } from './docker-config.ts';
export { loadDockerConfig, removeCredentials, saveCredentials } from './docker-config.ts';
export {
  credentialHost,
  dockerHubRegistryHost,
  isInsecureAllowed,
  isLoopbackHost,
  redactUrl,
  registryHost,
} from './endpoint.ts';
export type { ErrorContext, RegistryErrorDetail, RegistryRequestInfo } from './errors.ts';
export { RegistryError } from './errors.ts';
export type { OpenVerifiedOptions, PutOptions } from './repository.ts';
export { maxManifestBytes, Repository } from './repository.ts';
export type { RetryOptions } from './retry.ts';
export type { HttpMethod, Middleware, Send, TransportRequest, TransportResponse } from './transport.ts';
export { undici } from './undici.ts';
