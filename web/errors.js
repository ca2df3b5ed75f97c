// Every error code of the protocol as a sentence a person can act on.
const SENTENCES = {
  bad_request: 'The server could not accept that request. Check what you entered and try again.',
  unauthenticated: 'You are not logged in. Please log in again.',
  forbidden: 'You are not allowed to do that here.',
  not_found: 'Nobody with that email or id was found.',
  conflict: 'An account with this email already exists. Log in instead.',
  group_full: 'This group is full: no more members can be added.',
  too_large: 'That message is too long. Please shorten it.',
  rate_limited: 'You are sending too fast. Wait a moment and try again.',
  unsupported: 'This server does not offer that feature.',
  unavailable: 'The server is temporarily unavailable. Please try again shortly.',
  internal: 'Something went wrong on the server. Please try again.',
  disconnected: 'You are offline. Parley is reconnecting.',
};

// `overrides` gives a sentence that fits the action (a failed login is not
// "not logged in").
export function sentenceFor(error, overrides = {}) {
  const code = error && error.code ? error.code : 'internal';
  return overrides[code] || SENTENCES[code] || `The server answered with an error (${code}).`;
}
