// Every error code of the protocol's closed set has its own sentence in the
// web client (no code falls back to the generic text), and a code the client
// does not know still reads as a sentence naming it.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';

// web/ has no package.json (it is served as is), so Node would not read
// errors.js as a module by its name; a data: URL is always one.
const source = readFileSync(new URL('../../web/errors.js', import.meta.url), 'utf8');
const { sentenceFor } = await import(`data:text/javascript,${encodeURIComponent(source)}`);

const codes = [
  'bad_request', 'unauthenticated', 'forbidden', 'not_found', 'conflict', 'group_full',
  'too_large', 'rate_limited', 'unsupported', 'unavailable', 'internal',
];
const generic = sentenceFor({ code: 'no_such_code' });
assert.match(generic, /no_such_code/);
const seen = new Set();
for (const code of codes) {
  const sentence = sentenceFor({ code });
  assert.notEqual(sentence, sentenceFor({ code: 'no_such_code' }).replace('no_such_code', code), code);
  assert.match(sentence, /^[A-Z].*\.$/, `${code}: a sentence`);
  assert.ok(!seen.has(sentence), `${code}: its own sentence`);
  seen.add(sentence);
}
assert.equal(sentenceFor({ code: 'not_found' }, { not_found: 'No such email.' }), 'No such email.');
console.log('errors: every protocol error code has its own sentence');
