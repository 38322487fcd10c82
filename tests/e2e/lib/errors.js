// Turns errors from the SDK into readable text for scenario failures:
// the whole cause chain, with gRPC status codes named, so a failing run
// says "NOT_FOUND: namespace x" rather than "[object Object]".
'use strict';

const CODE_NAMES = [
  'OK', 'CANCELLED', 'UNKNOWN', 'INVALID_ARGUMENT', 'DEADLINE_EXCEEDED',
  'NOT_FOUND', 'ALREADY_EXISTS', 'PERMISSION_DENIED', 'RESOURCE_EXHAUSTED',
  'FAILED_PRECONDITION', 'ABORTED', 'OUT_OF_RANGE', 'UNIMPLEMENTED',
  'INTERNAL', 'UNAVAILABLE', 'DATA_LOSS', 'UNAUTHENTICATED',
];

const codeName = (code) => (code == null ? 'no gRPC code'
  : `${code} ${CODE_NAMES[code] || '?'}`);

const isGrpcLike = (e) => e && typeof e === 'object' &&
  Number.isInteger(e.code) && e.code >= 0 && e.code <= 16 &&
  ('details' in e || 'metadata' in e);

// The first gRPC status code found on err or its causes, or null.
function grpcCode(err) {
  for (let e = err, depth = 0; e && depth < 10; e = e.cause, depth++) {
    if (isGrpcLike(e)) return e.code;
  }
  return null;
}

function oneLevel(e) {
  if (!(e instanceof Error)) return `thrown non-Error: ${safe(e)}`;
  let s = `${e.name || 'Error'}: ${e.message}`;
  if (isGrpcLike(e)) s += `  [gRPC ${codeName(e.code)}: ${e.details}]`;
  if (e.type !== undefined) s += `  [type=${e.type}]`;
  if (e.nonRetryable !== undefined) s += `  [nonRetryable=${e.nonRetryable}]`;
  if (e.workflowId !== undefined) s += `  [workflowId=${e.workflowId}]`;
  return s;
}

function safe(v) {
  try { return JSON.stringify(v); } catch (_) { return String(v); }
}

// Frames of err's own stack (the message may itself contain 'at' lines).
function ownFrames(err) {
  const stack = String(err.stack);
  const at = stack.indexOf(err.message);
  const rest = at >= 0 ? stack.slice(at + err.message.length) : stack;
  return rest.split('\n').filter((l) => /^\s+at /.test(l)).slice(0, 6);
}

// opts.stack: false leaves out stack frames (for errors quoted inside
// another error's message).
function describeError(err, indent = '', opts = {}) {
  if (err == null) return `${indent}(no error)`;
  const out = [];
  let e = err;
  for (let depth = 0; e && depth < 10; depth++) {
    out.push(`${indent}${depth ? 'caused by: ' : ''}${oneLevel(e)}`);
    const c = e.cause;
    // CombinedWorkerRunError carries { workerError, innerError }.
    if (c && !(c instanceof Error) && (c.workerError || c.innerError)) {
      out.push(`${indent}  worker error:`);
      out.push(describeError(c.workerError, indent + '    '));
      out.push(`${indent}  scenario error:`);
      out.push(describeError(c.innerError, indent + '    '));
      break;
    }
    e = c;
  }
  if (opts.stack !== false && err instanceof Error && err.stack) {
    const frames = ownFrames(err);
    if (frames.length) out.push(`${indent}stack:\n${frames.map((f) => indent + f).join('\n')}`);
  }
  return out.join('\n');
}

module.exports = { describeError, grpcCode, codeName, CODE_NAMES };
