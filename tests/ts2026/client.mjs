// Interop check: drive an mcp-tasks server with the official 2026-07-28 tasks client —
// @modelcontextprotocol/ext-tasks 0.2 on @modelcontextprotocol/client 2.4 — over streamable
// HTTP, through the library's own task API: createTaskSessionFromClient() opts every tools/call
// in to the io.modelcontextprotocol/tasks extension, callTool() creates the task, settle()
// polls tasks/get (or follows notifications/tasks), the session's onInputRequest handler
// answers input_required through tasks/update, and cancel()/task(id) send tasks/cancel and
// tasks/get. Push comes from the Client's own subscriptions/listen (client.listen()).
//
// Usage: node tests/ts2026/client.mjs http://127.0.0.1:<port>/mcp
//
// Prints one JSON line (a summary of what it observed, step by step) on stdout. Exits 0 when
// every check passed; otherwise it still prints the summary (so a test can say what else it
// saw) and then "FAIL: ..." lines on stderr, and exits 1.

import { setMaxListeners } from 'node:events';
import { readFileSync } from 'node:fs';

import {
    CLIENT_CAPABILITIES_META_KEY,
    CLIENT_INFO_META_KEY,
    Client,
    PROTOCOL_VERSION_META_KEY,
    StreamableHTTPClientTransport
} from '@modelcontextprotocol/client';
import {
    createApplicationInputHandler,
    createTaskSessionEndpointId,
    createTaskSessionFromClient,
    DispatchError
} from '@modelcontextprotocol/ext-tasks/client';
import { contributeTaskFilterV2, readAcceptedTaskIdsV2, TASKS_EXTENSION_ID_V2 } from '@modelcontextprotocol/ext-tasks/core/v2';

const PROTOCOL_VERSION = '2026-07-28';
const EXTENSION = TASKS_EXTENSION_ID_V2; // "io.modelcontextprotocol/tasks"
const REQUEST_TIMEOUT_MS = 20000;
const CLIENT_INFO = { name: 'mcp-tasks-ts2026-interop', version: '0.0.0' };
// The task client declares the extension (and form elicitation, which a task's input requests
// use); the plain client declares neither, like any 2026 client that knows nothing of tasks.
const TASK_CLIENT_CAPABILITIES = { elicitation: { form: {} }, extensions: { [EXTENSION]: {} } };
const PLAIN_CLIENT_CAPABILITIES = {};
const SERVER_INFO_META = 'io.modelcontextprotocol/serverInfo';

// Twenty concurrent executions each link their abort signals to the session's lifecycle
// signal; Node's default of 10 listeners per signal would only print a leak warning.
setMaxListeners(100);

class CheckFailed extends Error {}

function check(condition, message, observed) {
    if (!condition) {
        const detail = observed === undefined ? '' : ` (observed: ${JSON.stringify(observed)})`;
        throw new CheckFailed(`${message}${detail}`);
    }
}

function sleepMs(ms) {
    return new Promise(resolve => setTimeout(resolve, ms));
}

function packageVersion(name) {
    const url = new URL(`./node_modules/${name}/package.json`, import.meta.url);
    return JSON.parse(readFileSync(url, 'utf8')).version;
}

function sameJson(a, b) {
    return canonical(a) === canonical(b);
}

function canonical(value) {
    if (Array.isArray(value)) return `[${value.map(canonical).join(',')}]`;
    if (value !== null && typeof value === 'object') {
        const keys = Object.keys(value).filter(key => value[key] !== undefined).sort();
        return `{${keys.map(key => `${JSON.stringify(key)}:${canonical(value[key])}`).join(',')}}`;
    }
    return JSON.stringify(value);
}

/** An error as JSON: class, message, code/data, the causes behind it and any schema issues. */
function describe(error, depth = 0) {
    if (!(error instanceof Error)) return { value: String(error) };
    const out = { name: error.constructor?.name ?? error.name, message: error.message };
    if (error.code !== undefined) out.code = error.code;
    if (error.data !== undefined) out.data = error.data;
    if (Array.isArray(error.issues)) out.issues = JSON.parse(JSON.stringify(error.issues)).slice(0, 10);
    if (error.details !== undefined && Object.keys(error.details).length > 0) out.details = error.details;
    if (error.cause !== undefined && depth < 4) out.cause = describe(error.cause, depth + 1);
    return out;
}

/** Every message of an error and its causes, for "does it mention X" checks. */
function messages(error) {
    const parts = [];
    for (let current = error; current instanceof Error; current = current.cause) parts.push(current.message);
    return parts.join(' <- ');
}

function textOf(result) {
    return (result?.content ?? []).map(block => block.text ?? '').join('');
}

/** A task outcome as JSON (the result or the error behind a failed one). */
function outcomeRecord(outcome) {
    if (outcome.status === 'completed') return { status: 'completed', result: outcome.result };
    if (outcome.status === 'failed') return { status: 'failed', error: describe(outcome.error) };
    return { status: outcome.status };
}

/**
 * The host request coordinator ext-tasks needs for 2026-07-28 task traffic (its `rawDispatch`).
 * The SDK Client decodes every result through its 2026 wire codec, which refuses
 * `resultType: "task"` and strips `resultType` from the rest — so tools/call and tasks/* must
 * bypass it. This coordinator owns its own request ids (strings, which never collide with the
 * Client's numeric ids or its "listen:N" ids), sends on the Client's own transport (same
 * session and headers; the transport derives MCP-Protocol-Version, Mcp-Method and Mcp-Name from
 * the framed body) and takes the matching responses before the Client sees them. Everything
 * else (notifications, the Client's own responses) passes through unchanged.
 */
function createRequestCoordinator(transport, label) {
    const pending = new Map();
    const sent = [];
    const acknowledgements = []; // raw, as the server sent them (see the push step)
    let nextId = 0;
    const deliver = transport.onmessage;
    transport.onmessage = (message, extra) => {
        if (message.method === 'notifications/subscriptions/acknowledged') acknowledgements.push(structuredClone(message));
        const waiter = !('method' in message) && 'id' in message ? pending.get(message.id) : undefined;
        if (waiter !== undefined) {
            waiter(message);
            return;
        }
        deliver?.(message, extra);
    };
    const closed = transport.onclose;
    transport.onclose = () => {
        for (const waiter of [...pending.values()]) waiter(undefined);
        closed?.();
    };

    async function dispatch(request, options = {}) {
        const id = `${label}:${++nextId}`;
        sent.push({ method: request.method, taskId: request.params?.taskId ?? null, tool: request.params?.name ?? null });
        const streamAbort = new AbortController();
        const timeoutMs = options.context?.requestTimeoutMs ?? REQUEST_TIMEOUT_MS;
        return new Promise((resolve, reject) => {
            let timer;
            const finish = settle => {
                clearTimeout(timer);
                pending.delete(id);
                options.signal?.removeEventListener('abort', onAbort);
                settle();
            };
            const onAbort = () => {
                streamAbort.abort();
                const reason = options.signal.reason;
                finish(() => reject(reason instanceof Error ? reason : new DOMException('The operation was aborted', 'AbortError')));
            };
            if (options.signal?.aborted) {
                onAbort();
                return;
            }
            options.signal?.addEventListener('abort', onAbort, { once: true });
            timer = setTimeout(() => {
                streamAbort.abort();
                finish(() => reject(new DispatchError(`${request.method} got no response within ${timeoutMs} ms`)));
            }, timeoutMs);
            pending.set(id, message =>
                finish(() => {
                    if (message === undefined) reject(new DispatchError('the connection closed', false));
                    else if ('error' in message) resolve({ kind: 'error', error: message.error });
                    else resolve({ kind: 'result', result: message.result });
                })
            );
            transport
                .send({ jsonrpc: '2.0', id, ...request }, { requestSignal: streamAbort.signal, headers: options.context?.headers })
                .catch(error => finish(() => reject(new DispatchError(`${request.method}: ${error?.message ?? error}`, false, { cause: error }))));
        });
    }

    return { dispatch, sent, acknowledgements };
}

/**
 * A tool result without the per-response `_meta["io.modelcontextprotocol/serverInfo"]` stamp
 * (servers SHOULD put it on every response, so it belongs to the response that carried the
 * result, not to the tool's result).
 */
function withoutServerInfo(result) {
    if (result?._meta === undefined || !(SERVER_INFO_META in result._meta)) return result;
    const { [SERVER_INFO_META]: _, ...meta } = result._meta;
    const { _meta, ...rest } = result;
    return Object.keys(meta).length === 0 ? rest : { ...rest, _meta: meta };
}

/** A 2026-07-28 request `_meta` envelope, as a client with these capabilities sends it. */
function envelope(capabilities) {
    return {
        [PROTOCOL_VERSION_META_KEY]: PROTOCOL_VERSION,
        [CLIENT_INFO_META_KEY]: CLIENT_INFO,
        [CLIENT_CAPABILITIES_META_KEY]: capabilities
    };
}

async function connect(url, capabilities) {
    const client = new Client(CLIENT_INFO, {
        capabilities,
        versionNegotiation: { mode: { pin: PROTOCOL_VERSION } }
    });
    const transport = new StreamableHTTPClientTransport(new URL(url));
    await client.connect(transport);
    return { client, transport };
}

async function main() {
    const url = process.argv[2];
    if (!url) {
        throw new CheckFailed('usage: node client.mjs <server url, e.g. http://127.0.0.1:8000/mcp>');
    }

    const summary = {
        packages: {
            '@modelcontextprotocol/ext-tasks': packageVersion('@modelcontextprotocol/ext-tasks'),
            '@modelcontextprotocol/client': packageVersion('@modelcontextprotocol/client')
        }
    };
    const failures = [];
    const protocolErrors = [];
    const sessionErrors = [];
    const notifications = [];
    const inputRequests = [];

    /**
     * Run one step. Its record fills as it goes, so a failed check still shows what was seen;
     * `expect` notes a failed check and carries on (one bug must not hide the next), `check`
     * (or any error) ends the step.
     */
    async function step(name, body) {
        const record = {};
        const stepFailures = [];
        summary[name] = record;
        const expect = (condition, message, observed) => {
            if (!condition) {
                const detail = observed === undefined ? '' : ` (observed: ${JSON.stringify(observed)})`;
                stepFailures.push(`${message}${detail}`);
            }
        };
        const started = Date.now();
        try {
            await body(record, expect);
        } catch (error) {
            stepFailures.push(error instanceof CheckFailed ? error.message : `unexpected error: ${messages(error)}`);
            if (!(error instanceof CheckFailed)) record.error = describe(error);
        }
        record.ms = Date.now() - started;
        record.ok = stepFailures.length === 0;
        record.failures = stepFailures;
        failures.push(...stepFailures.map(failure => `${name}: ${failure}`));
    }

    // -- the task client: SDK Client + ext-tasks session --------------------------------------
    const { client, transport } = await connect(url, TASK_CLIENT_CAPABILITIES);
    client.onerror = error => protocolErrors.push(`task client: ${error?.message ?? error}`);
    const coordinator = createRequestCoordinator(transport, 'ext-tasks');
    // Installed before the ext-tasks adapter, which chains to it: every notification the
    // Client hands on (notifications/tasks included) is seen here first.
    client.fallbackNotificationHandler = async notification => {
        const params = notification.params ?? {};
        notifications.push({
            method: notification.method,
            taskId: params.taskId ?? null,
            status: params.status ?? null,
            statusMessage: params.statusMessage ?? null
        });
    };
    const onInputRequest = createApplicationInputHandler({
        elicitation: async (request, context) => {
            const schema = request.params.requestedSchema ?? {};
            // Accept, answering every boolean field of the form with true.
            const content = Object.fromEntries(
                Object.entries(schema.properties ?? {})
                    .filter(([, property]) => property.type === 'boolean')
                    .map(([field]) => [field, true])
            );
            inputRequests.push({
                kind: request.kind,
                message: request.params.message,
                requestedSchema: schema,
                scope: context.scope,
                delivery: context.delivery,
                taskId: context.taskId ?? null,
                inputId: context.inputId ?? null,
                answer: { action: 'accept', content }
            });
            return { action: 'accept', content };
        },
        sampling: async () => {
            throw new Error('this test expects no sampling requests');
        },
        roots: async () => ({ roots: [] })
    });
    const session = createTaskSessionFromClient(client, {
        endpointId: await createTaskSessionEndpointId('mcp-tasks-ts2026-interop', { transport: 'streamable-http', url }),
        rawDispatch: coordinator.dispatch,
        v2RequestFraming: {
            protocolVersion: client.getNegotiatedProtocolVersion(),
            clientInfo: CLIENT_INFO,
            clientCapabilities: TASK_CLIENT_CAPABILITIES
        },
        onInputRequest,
        onError: error => sessionErrors.push(describe(error))
    });

    // -- the plain client: no ext-tasks, no extension in its capabilities --------------------
    const plainConnection = await connect(url, PLAIN_CLIENT_CAPABILITIES);
    const plain = plainConnection.client;
    plain.onerror = error => protocolErrors.push(`plain client: ${error?.message ?? error}`);
    // Only to see a plain call's answer exactly as it is on the wire (the Client strips
    // resultType from the results it returns).
    const plainWire = createRequestCoordinator(plainConnection.transport, 'plain-wire');
    async function plainWireCall(name, args) {
        const response = await plainWire.dispatch({
            method: 'tools/call',
            params: { name, arguments: args, _meta: envelope(PLAIN_CLIENT_CAPABILITIES) }
        });
        return response.kind === 'result' ? { result: response.result } : { error: response.error };
    }
    /** The library's plain callTool: its result, or the protocol error it throws. */
    async function plainLibraryCall(name, args) {
        try {
            return { result: await plain.callTool({ name, arguments: args }) };
        } catch (error) {
            return { error: describe(error) };
        }
    }
    const requestsFor = taskId => coordinator.sent.filter(entry => entry.taskId === taskId).map(entry => entry.method);
    const eventName = event => (event.type === 'task' ? `task:${event.task.status}` : `outcome:${event.outcome.status}`);

    /** Start a tool as a task through the session (the server must make it one). */
    async function startTask(name, args) {
        const execution = await session.callTool(name, args, {
            task: { preference: 'require' },
            requestTimeoutMs: REQUEST_TIMEOUT_MS
        });
        check(execution.kind === 'task', `${name}: the call should become a task`, execution.kind);
        return execution;
    }

    /** A finished task as the server stored it, through the library's tasks/get. */
    async function storedTask(taskId) {
        const snapshot = await session.task(taskId, { requestTimeoutMs: REQUEST_TIMEOUT_MS }).snapshot();
        return { status: snapshot.status, statusMessage: snapshot.statusMessage ?? null, raw: snapshot.raw };
    }

    try {
        // 1. discover --------------------------------------------------------------------
        await step('discover', async (record, expect) => {
            const capabilities = client.getServerCapabilities();
            record.protocolVersion = client.getNegotiatedProtocolVersion();
            record.era = client.getProtocolEra();
            record.plainProtocolVersion = plain.getNegotiatedProtocolVersion();
            record.serverInfo = client.getServerVersion() ?? null;
            record.extensions = capabilities?.extensions ?? null;
            record.tasksExtension = capabilities?.extensions?.[EXTENSION] ?? null;
            record.sessionCapabilities = session.capabilities;
            expect(record.protocolVersion === PROTOCOL_VERSION, `the negotiated protocol version should be ${PROTOCOL_VERSION}`, record.protocolVersion);
            expect(record.era === 'modern', 'the connection should be a 2026-era (modern) one', record.era);
            expect(sameJson(record.tasksExtension, {}), `capabilities.extensions["${EXTENSION}"] should be {}`, capabilities);
            expect(session.capabilities.execution === true, 'ext-tasks should see a tasks server', session.capabilities);
        });

        // 2. create a task, poll it to completion --------------------------------------------
        await step('count', async (record, expect) => {
            const execution = await startTask('count', { to: 7 });
            record.taskId = execution.handle.taskId;
            const events = [];
            const { outcome, lastTask } = await execution.settle({ onEvent: event => events.push(eventName(event)) });
            record.events = events;
            record.outcome = outcomeRecord(outcome);
            record.lastTask = lastTask
                ? { status: lastTask.status, ttlMs: lastTask.retentionMs, pollIntervalMs: lastTask.suggestedPollIntervalMs ?? null }
                : null;
            record.requests = requestsFor(record.taskId);
            record.storedResult = (await storedTask(record.taskId)).raw.result ?? null;
            record.plainWire = await plainWireCall('count', { to: 7 });
            expect(outcome.status === 'completed', 'count: the task should complete', record.outcome);
            expect(sameJson(outcome.result?.structuredContent, { result: 7 }), 'count: structuredContent should be {"result": 7}', outcome.result);
            expect(outcome.result?.isError !== true, 'count: the result should not be an error', outcome.result);
            expect(events[0] === 'task:working' && events.at(-1) === 'outcome:completed', 'count: events should go from working to completed', events);
            expect(record.requests.includes('tasks/get'), 'count: the library should have polled tasks/get', record.requests);
            expect(
                sameJson(record.storedResult, withoutServerInfo(record.plainWire.result)),
                'count: the task result should be what the same call returns without a task',
                { task: record.storedResult, plain: record.plainWire }
            );
        });

        // 3. push: subscriptions/listen ------------------------------------------------------
        await step('push', async (record, expect) => {
            const execution = await startTask('sleep', { seconds: 0.5 });
            const taskId = (record.taskId = execution.handle.taskId);
            const filter = contributeTaskFilterV2({}, [taskId]);
            const subscription = await client.listen(filter.notifications, { timeout: REQUEST_TIMEOUT_MS });
            // What the Client hands back, and what the server actually sent: the Client
            // validates the acknowledgement against the core SubscriptionFilter, which has no
            // taskIds, and its zod object drops the key.
            record.sdkHonoredFilter = subscription.honoredFilter;
            const acknowledgement = coordinator.acknowledgements.at(-1);
            record.acknowledgement = acknowledgement?.params ?? null;
            record.honoredTaskIds = readAcceptedTaskIdsV2(acknowledgement?.params);
            const events = [];
            const { outcome } = await execution.settle({ onEvent: event => events.push(eventName(event)) });
            record.events = events;
            record.outcome = outcomeRecord(outcome);
            // The server ends the listen request once every task in it has ended.
            record.subscriptionClosed = await Promise.race([subscription.closed, sleepMs(5000).then(() => 'still open')]);
            if (record.subscriptionClosed === 'still open') await subscription.close();
            const seen = notifications.filter(note => note.method === 'notifications/tasks' && note.taskId === taskId);
            record.notifications = seen.map(note => note.status);
            record.statusMessages = seen.map(note => note.statusMessage).filter(Boolean);
            record.requests = requestsFor(taskId);
            expect(sameJson(record.honoredTaskIds, [taskId]), 'push: the server should acknowledge the task id', record.acknowledgement);
            expect(record.notifications.length > 0, 'push: notifications/tasks should arrive for the task', notifications);
            expect(record.notifications.at(-1) === 'completed', 'push: the last notification should say completed', record.notifications);
            expect(
                outcome.status === 'completed' && textOf(outcome.result) === 'slept 0.5s',
                'push: the task should complete with "slept 0.5s"',
                record.outcome
            );
            expect(record.subscriptionClosed === 'graceful', 'push: the server should end the listen stream once the task ended', record.subscriptionClosed);
        });

        // 4. input_required -> tasks/update ---------------------------------------------------
        await step('inputRequired', async (record, expect) => {
            const path = '/tmp/mcp-tasks-interop.txt';
            record.path = path;
            const execution = await startTask('confirm', { path });
            const taskId = (record.taskId = execution.handle.taskId);
            const events = [];
            const { outcome } = await execution.settle({ onEvent: event => events.push(eventName(event)) });
            record.events = events;
            record.outcome = outcomeRecord(outcome);
            record.inputRequests = inputRequests.filter(request => request.taskId === taskId);
            record.requests = requestsFor(taskId);
            expect(events.includes('task:input_required'), 'confirm: the task should reach input_required', events);
            expect(record.inputRequests.length === 1, 'confirm: one elicitation should reach the input handler', inputRequests);
            const [request] = record.inputRequests;
            expect(
                request?.kind === 'elicitation' && request.scope === 'task' && request.delivery === 'task-update',
                'confirm: a task-scoped elicitation, answered through tasks/update',
                request
            );
            expect(record.requests.includes('tasks/update'), 'confirm: the library should have sent tasks/update', record.requests);
            expect(
                outcome.status === 'completed' && textOf(outcome.result) === `deleted ${path}`,
                `confirm: the task should complete with "deleted ${path}"`,
                record.outcome
            );
        });

        // 5. cancel ------------------------------------------------------------------------
        await step('cancel', async (record, expect) => {
            const execution = await startTask('sleep', { seconds: 30 });
            const taskId = (record.taskId = execution.handle.taskId);
            const controller = session.task(taskId, { requestTimeoutMs: REQUEST_TIMEOUT_MS });
            record.statusBeforeCancel = (await controller.snapshot()).status;
            await execution.cancel();
            record.outcome = outcomeRecord(await execution.result());
            // Cancellation is cooperative: give the server a moment to settle the status.
            const statuses = [];
            for (let attempt = 0; attempt < 50; attempt += 1) {
                statuses.push((await controller.snapshot()).status);
                if (statuses.at(-1) !== 'working') break;
                await sleepMs(100);
            }
            record.statusesAfterCancel = statuses;
            record.status = statuses.at(-1);
            record.requests = requestsFor(taskId);
            expect(record.statusBeforeCancel === 'working', 'cancel: the task should be working before the cancel', record.statusBeforeCancel);
            expect(record.requests.includes('tasks/cancel'), 'cancel: the library should have sent tasks/cancel', record.requests);
            expect(record.outcome.status === 'cancelled', 'cancel: the execution should end cancelled', record.outcome);
            expect(record.status === 'cancelled', 'cancel: tasks/get should say cancelled', statuses);
        });

        // 6. a tool that raises ----------------------------------------------------------------
        await step('toolError', async (record, expect) => {
            const execution = await startTask('fail', {});
            const taskId = (record.taskId = execution.handle.taskId);
            const { outcome } = await execution.settle();
            record.outcome = outcomeRecord(outcome);
            // The same task through the library's manual controller (tasks/get to the end).
            record.controllerOutcome = outcomeRecord(await session.task(taskId, { requestTimeoutMs: REQUEST_TIMEOUT_MS }).result());
            const stored = await storedTask(taskId);
            record.taskStatus = stored.status;
            record.statusMessage = stored.statusMessage;
            record.storedResult = stored.raw.result ?? null;
            record.plainWire = await plainWireCall('fail', {});
            record.plainCallTool = await plainLibraryCall('fail', {});
            expect(record.plainWire.result?.isError === true, 'fail: the plain call should return an isError result', record.plainWire);
            expect(record.taskStatus === 'completed', 'fail: a tool error completes the task (failed is for JSON-RPC errors)', stored.raw);
            expect(
                sameJson(record.storedResult, withoutServerInfo(record.plainWire.result)),
                'fail: the task result should be exactly what the same call returns without a task',
                { task: record.storedResult, plain: record.plainWire.result }
            );
            expect(
                outcome.status === 'completed' && outcome.result.isError === true && textOf(outcome.result).includes('boom'),
                'fail: the client should surface the tool error result (isError, "boom")',
                outcome.status === 'failed' ? { status: 'failed', error: messages(outcome.error) } : record.outcome
            );
        });

        // 7. invalid arguments -------------------------------------------------------------------
        await step('invalidArguments', async (record, expect) => {
            const args = { to: 'x' };
            record.plainWire = await plainWireCall('count', args);
            record.plainCallTool = await plainLibraryCall('count', args);
            let execution;
            try {
                execution = await session.callTool('count', args, { requestTimeoutMs: REQUEST_TIMEOUT_MS });
                record.kind = execution.kind;
            } catch (error) {
                record.kind = 'error';
                record.callError = describe(error);
            }
            if (execution?.kind === 'task') {
                const taskId = (record.taskId = execution.handle.taskId);
                record.outcome = outcomeRecord((await execution.settle()).outcome);
                const stored = await storedTask(taskId);
                record.taskStatus = stored.status;
                record.storedResult = stored.raw.result ?? null;
                record.storedError = stored.raw.error ?? null;
            } else if (execution !== undefined) {
                record.outcome = outcomeRecord(await execution.result());
            }
            if (record.plainWire.error !== undefined) {
                // A JSON-RPC error without a task: the same error, at once or as a failed task.
                const code = record.callError?.code ?? record.storedError?.code;
                expect(code === record.plainWire.error.code, 'invalid arguments: the task call should give the JSON-RPC error of the plain call', record);
            } else {
                expect(
                    sameJson(record.storedResult, withoutServerInfo(record.plainWire.result)),
                    'invalid arguments: the task result should be exactly what the same call returns without a task',
                    { task: record.storedResult ?? record.callError, plain: record.plainWire.result }
                );
                expect(
                    record.outcome?.status === 'completed' && record.outcome.result?.isError === true,
                    'invalid arguments: the client should surface the isError result',
                    record.outcome?.status === 'failed' ? { status: 'failed', error: record.outcome.error.message } : record.outcome
                );
            }
        });

        // 8. unknown task id ---------------------------------------------------------------------
        await step('unknownTask', async (record, expect) => {
            try {
                record.unexpected = (await storedTask('no-such-task-0000')).raw;
            } catch (error) {
                record.error = describe(error);
            }
            expect(record.error?.name === 'JsonRpcResponseError', 'tasks/get of an unknown id should be a JSON-RPC error', record);
            expect(record.error?.code === -32602, 'tasks/get of an unknown id should be -32602', record.error);
        });

        // 9. a task-only tool, called without the extension -------------------------------------
        await step('missingCapability', async (record, expect) => {
            record.onlyTask = await plainLibraryCall('only_task', { to: 3 });
            // An optional task tool just runs for a client without the extension.
            record.count = await plainLibraryCall('count', { to: 2 });
            // And with the extension (the task client), the task-only tool runs as a task.
            const execution = await startTask('only_task', { to: 3 });
            record.withExtension = outcomeRecord(await execution.result());
            expect(
                sameJson(record.withExtension.result?.structuredContent, { result: 3 }),
                'only_task with the extension should complete as a task',
                record.withExtension
            );
            const error = record.onlyTask.error;
            expect(error?.code === -32021, 'only_task without the extension should be error -32021', record.onlyTask);
            expect(
                sameJson(error?.data?.requiredCapabilities, { extensions: { [EXTENSION]: {} } }),
                'error.data.requiredCapabilities should name the extension',
                error?.data
            );
            expect(sameJson(record.count.result?.structuredContent, { result: 2 }), 'count without the extension should run at once', record.count);
        });

        // 10. concurrency -------------------------------------------------------------------------
        await step('concurrent', async (record, expect) => {
            const started = Date.now();
            const numbers = Array.from({ length: 20 }, (_, i) => i + 1);
            const executions = await Promise.all(numbers.map(to => startTask('count', { to })));
            const outcomes = await Promise.all(executions.map(execution => execution.result()));
            record.elapsedMs = Date.now() - started;
            record.taskIds = executions.map(execution => execution.handle.taskId);
            record.statuses = outcomes.map(outcome => outcome.status);
            record.results = outcomes.map(outcome => outcome.result?.structuredContent?.result ?? null);
            await Promise.all(executions.map(execution => execution.close()));
            expect(new Set(record.taskIds).size === 20, 'concurrent: 20 distinct task ids', record.taskIds);
            expect(record.statuses.every(status => status === 'completed'), 'concurrent: every task should complete', record.statuses);
            expect(sameJson(record.results, numbers), 'concurrent: every task should have its own result', record.results);
        });

        await sleepMs(100); // let trailing notifications arrive
        summary.requestCounts = coordinator.sent.reduce((counts, entry) => ({ ...counts, [entry.method]: (counts[entry.method] ?? 0) + 1 }), {});
        summary.notificationCount = notifications.length;
        summary.protocolErrors = protocolErrors;
        summary.sessionErrors = sessionErrors;
        if (protocolErrors.length > 0) failures.push(`the SDK reported protocol errors: ${JSON.stringify(protocolErrors)}`);
        if (sessionErrors.length > 0) failures.push(`ext-tasks reported background errors: ${JSON.stringify(sessionErrors)}`);
    } finally {
        await session.close().catch(() => {});
        await client.close().catch(() => {});
        await plain.close().catch(() => {});
    }

    summary.ok = failures.length === 0;
    summary.failures = failures;
    process.stdout.write(`${JSON.stringify(summary)}\n`);
    return failures;
}

main().then(
    failures => {
        for (const failure of failures) process.stderr.write(`FAIL: ${failure}\n`);
        process.exit(failures.length === 0 ? 0 : 1);
    },
    error => {
        const message = error instanceof CheckFailed ? error.message : `unexpected error: ${error?.stack ?? error}`;
        process.stderr.write(`FAIL: ${message}\n`);
        process.exit(1);
    }
);
