// Interop check: drive an mcp-tasks server with the official TypeScript MCP SDK
// (@modelcontextprotocol/sdk 1.32), speaking the 2025-11-25 (SEP-1686) task dialect through
// the SDK's own `client.experimental.tasks` API over streamable HTTP.
//
// Usage: node tests/ts/client.mjs http://127.0.0.1:<port>/mcp
//
// On success prints one JSON line (a summary of what it observed) and exits 0; on any failed
// check prints "FAIL: ..." to stderr and exits 1.

import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import {
    CallToolResultSchema,
    ErrorCode,
    LATEST_PROTOCOL_VERSION,
    McpError,
    TaskStatusNotificationSchema
} from '@modelcontextprotocol/sdk/types.js';

const RELATED_TASK = 'io.modelcontextprotocol/related-task';

class CheckFailed extends Error {}

function check(condition, message, observed) {
    if (!condition) {
        const detail = observed === undefined ? '' : ` (observed: ${JSON.stringify(observed)})`;
        throw new CheckFailed(`${message}${detail}`);
    }
}

/** The McpError a promise rejects with (fails the check if it resolves instead). */
async function rejection(promise, what) {
    try {
        const value = await promise;
        throw new CheckFailed(`${what} should have failed but returned ${JSON.stringify(value)}`);
    } catch (error) {
        if (error instanceof CheckFailed) throw error;
        check(error instanceof McpError, `${what} should fail with an MCP error`, String(error));
        return error;
    }
}

/** Next message of a requestStream/callToolStream generator (fails if it ended). */
async function nextMessage(stream, what) {
    const { value, done } = await stream.next();
    check(!done, `${what}: the SDK's task stream ended early`);
    return value;
}

function sleepMs(ms) {
    return new Promise(resolve => setTimeout(resolve, ms));
}

async function main() {
    const url = process.argv[2];
    if (!url) {
        throw new CheckFailed('usage: node client.mjs <server url, e.g. http://127.0.0.1:8000/mcp>');
    }

    const protocolErrors = [];
    const statusNotifications = [];
    const progressNotifications = [];

    // The client declares no capabilities of its own: `capabilities.tasks` on a client is about
    // the server augmenting *its* requests to the client (sampling/elicitation). Augmenting
    // tools/call is governed by the server's capabilities.tasks.requests.tools.call, which
    // enforceStrictCapabilities makes the SDK check before it sends a task-augmented call.
    const client = new Client(
        { name: 'mcp-tasks-ts-interop', version: '0.0.0' },
        { capabilities: {}, enforceStrictCapabilities: true }
    );
    client.onerror = error => protocolErrors.push(String(error?.message ?? error));
    // Optional for the server, and a client must not rely on them: recorded, not required.
    // The SDK validates each one against its TaskStatusNotificationSchema (a mismatch would
    // surface through onerror, which fails the run).
    client.setNotificationHandler(TaskStatusNotificationSchema, notification => {
        const { taskId, status, statusMessage } = notification.params;
        statusNotifications.push({ taskId, status, ...(statusMessage ? { statusMessage } : {}) });
    });

    const transport = new StreamableHTTPClientTransport(new URL(url));
    await client.connect(transport);

    try {
        // -- initialize ------------------------------------------------------------------
        check(
            transport.protocolVersion === LATEST_PROTOCOL_VERSION && LATEST_PROTOCOL_VERSION === '2025-11-25',
            'the negotiated protocol version should be 2025-11-25',
            { negotiated: transport.protocolVersion, sdkLatest: LATEST_PROTOCOL_VERSION }
        );
        const capabilities = client.getServerCapabilities();
        check(capabilities?.tasks, 'server capabilities should include tasks', capabilities);
        check(capabilities.tasks.requests?.tools?.call, 'capabilities.tasks.requests.tools.call', capabilities.tasks);
        check(capabilities.tasks.list, 'capabilities.tasks.list', capabilities.tasks);
        check(capabilities.tasks.cancel, 'capabilities.tasks.cancel', capabilities.tasks);

        // -- tools/list --------------------------------------------------------------------
        const { tools } = await client.listTools();
        const byName = Object.fromEntries(tools.map(tool => [tool.name, tool]));
        for (const name of ['count', 'sleep']) {
            check(byName[name], `tools/list should include ${name}`, Object.keys(byName));
            check(
                byName[name].execution?.taskSupport === 'optional',
                `${name}.execution.taskSupport should be "optional"`,
                byName[name].execution
            );
            // What callToolStream consults when no explicit task is given:
            check(client.isToolTask(name), `the SDK should consider ${name} a task tool`);
        }

        // -- count {to: 7} as a task, result through the SDK's task API ----------------
        const countMessages = [];
        for await (const message of client.experimental.tasks.callToolStream(
            { name: 'count', arguments: { to: 7 } },
            CallToolResultSchema,
            { task: { ttl: 60000 } }
        )) {
            countMessages.push(message);
        }
        const kinds = countMessages.map(m => m.type);
        check(kinds[0] === 'taskCreated', 'count: the first stream message should be taskCreated', kinds);
        const created = countMessages[0].task;
        check(created.status === 'working', 'count: CreateTaskResult.task.status should be working', created);
        check(typeof created.ttl === 'number' && created.ttl > 0, 'count: task.ttl should be a positive number', created);
        const last = countMessages.at(-1);
        check(last.type === 'result', 'count: the stream should end with a result', {
            kinds,
            error: last.error?.message
        });
        const countTaskId = created.taskId;
        const statuses = countMessages.filter(m => m.type === 'taskStatus').map(m => m.task.status);
        check(statuses.at(-1) === 'completed', 'count: the last polled status should be completed', statuses);
        for (const m of countMessages.filter(m => m.type === 'taskStatus')) {
            check(m.task.taskId === countTaskId, 'count: tasks/get should answer for the same task', m.task);
        }
        const countResult = last.result;
        check(
            JSON.stringify(countResult.structuredContent) === JSON.stringify({ result: 7 }),
            'count: structuredContent should be {"result": 7}',
            countResult
        );
        check(!countResult.isError, 'count: the result should not be an error', countResult);
        check(
            countResult._meta?.[RELATED_TASK]?.taskId === countTaskId,
            `count: tasks/result should carry _meta["${RELATED_TASK}"].taskId`,
            countResult._meta
        );

        // The same, asked for directly: tasks/get and tasks/result on a finished task.
        const countTask = await client.experimental.tasks.getTask(countTaskId);
        check(countTask.status === 'completed', 'count: tasks/get should say completed', countTask);
        const countAgain = await client.experimental.tasks.getTaskResult(countTaskId, CallToolResultSchema);
        check(
            JSON.stringify(countAgain.structuredContent) === JSON.stringify({ result: 7 }),
            'count: a second tasks/result should give the same result',
            countAgain
        );
        const cancelDone = await rejection(
            client.experimental.tasks.cancelTask(countTaskId),
            'tasks/cancel of a completed task'
        );
        check(
            cancelDone.code === ErrorCode.InvalidParams,
            'tasks/cancel of a completed task should be -32602',
            { code: cancelDone.code, message: cancelDone.message }
        );

        for (const field of ['createdAt', 'lastUpdatedAt']) {
            check(!Number.isNaN(Date.parse(countTask[field])), `count: task.${field} should be an ISO 8601 time`, countTask);
        }

        // -- tasks/result blocks while the task is still working ---------------------------
        const shortStream = client.experimental.tasks.callToolStream(
            { name: 'sleep', arguments: { seconds: 0.5 } },
            CallToolResultSchema,
            { task: { ttl: 60000 } }
        );
        const shortCreated = await nextMessage(shortStream, 'sleep 0.5');
        check(shortCreated.type === 'taskCreated', 'sleep 0.5: the first stream message should be taskCreated', shortCreated);
        const shortTaskId = shortCreated.task.taskId;
        await shortStream.return(undefined); // stop the SDK's polling; ask for the result at once
        const started = Date.now();
        const shortResult = await client.experimental.tasks.getTaskResult(shortTaskId, CallToolResultSchema);
        const blockedMs = Date.now() - started;
        const shortText = shortResult.content.map(block => block.text ?? '').join('');
        check(shortText.includes('slept 0.5s'), 'sleep 0.5: tasks/result should wait for the tool result', shortResult);
        check(
            shortResult._meta?.[RELATED_TASK]?.taskId === shortTaskId,
            `sleep 0.5: tasks/result should carry _meta["${RELATED_TASK}"].taskId`,
            shortResult._meta
        );
        const shortTask = await client.experimental.tasks.getTask(shortTaskId);
        check(shortTask.status === 'completed', 'sleep 0.5: tasks/get after tasks/result should say completed', shortTask);

        // -- sleep {seconds: 60} as a task, then cancel it --------------------------------
        const sleepStream = client.experimental.tasks.callToolStream(
            { name: 'sleep', arguments: { seconds: 60 } },
            CallToolResultSchema,
            { task: { ttl: 60000 }, onprogress: progress => progressNotifications.push(progress) }
        );
        const sleepCreated = await nextMessage(sleepStream, 'sleep');
        check(sleepCreated.type === 'taskCreated', 'sleep: the first stream message should be taskCreated', sleepCreated);
        const sleepTaskId = sleepCreated.task.taskId;
        check(sleepCreated.task.status === 'working', 'sleep: a new task should be working', sleepCreated.task);
        check(
            new Set([countTaskId, shortTaskId, sleepTaskId]).size === 3,
            'task ids should be distinct',
            [countTaskId, shortTaskId, sleepTaskId]
        );

        const sleepBefore = await client.experimental.tasks.getTask(sleepTaskId);
        check(sleepBefore.status === 'working', 'sleep: tasks/get before cancelling should say working', sleepBefore);

        const cancelReply = await client.experimental.tasks.cancelTask(sleepTaskId);
        check(cancelReply.taskId === sleepTaskId, 'tasks/cancel should answer with the task', cancelReply);
        check(cancelReply.status === 'cancelled', 'tasks/cancel should answer with status cancelled', cancelReply);

        const sleepAfter = await client.experimental.tasks.getTask(sleepTaskId);
        check(sleepAfter.status === 'cancelled', 'sleep: tasks/get after cancel should say cancelled', sleepAfter);

        // The SDK's own stream, resumed: its next poll sees the cancellation and ends.
        const sleepRest = [];
        for (;;) {
            const { value, done } = await sleepStream.next();
            if (done) break;
            sleepRest.push(value);
        }
        const sleepStatuses = sleepRest.filter(m => m.type === 'taskStatus').map(m => m.task.status);
        check(sleepStatuses.at(-1) === 'cancelled', 'sleep: the SDK stream should see cancelled', sleepStatuses);
        check(sleepRest.at(-1)?.type === 'error', 'sleep: the SDK stream should end with an error', sleepRest.map(m => m.type));

        const cancelledResult = await rejection(
            client.experimental.tasks.getTaskResult(sleepTaskId, CallToolResultSchema),
            'tasks/result of a cancelled task'
        );

        // -- tasks/list ---------------------------------------------------------------------
        const listed = [];
        let cursor;
        let pages = 0;
        do {
            const page = await client.experimental.tasks.listTasks(cursor);
            listed.push(...page.tasks);
            cursor = page.nextCursor;
            pages += 1;
            check(pages <= 100, 'tasks/list should not page forever');
        } while (cursor);
        const listedById = Object.fromEntries(listed.map(task => [task.taskId, task.status]));
        for (const taskId of [countTaskId, shortTaskId, sleepTaskId]) {
            check(taskId in listedById, `tasks/list should include ${taskId}`, Object.keys(listedById));
        }
        check(listedById[countTaskId] === 'completed', 'tasks/list: count should be completed', listedById);
        check(listedById[sleepTaskId] === 'cancelled', 'tasks/list: sleep should be cancelled', listedById);

        // -- unknown task id ----------------------------------------------------------------
        const unknownId = 'no-such-task-0000';
        const unknown = await rejection(client.experimental.tasks.getTask(unknownId), 'tasks/get of an unknown id');
        check(unknown.code === ErrorCode.InvalidParams, 'tasks/get of an unknown id should be -32602', {
            code: unknown.code,
            message: unknown.message
        });

        // Let any trailing notifications arrive, then make sure the SDK accepted every message.
        await sleepMs(200);
        check(protocolErrors.length === 0, 'the SDK reported protocol errors', protocolErrors);
        for (const note of statusNotifications) {
            check([countTaskId, shortTaskId, sleepTaskId].includes(note.taskId), 'a status notification for a task we did not create', note);
            check(note.taskId !== sleepTaskId || note.status !== 'completed', 'sleep was reported completed', note);
        }

        const summary = {
            ok: true,
            sdk: '@modelcontextprotocol/sdk',
            protocolVersion: transport.protocolVersion,
            serverTasksCapability: capabilities.tasks,
            taskSupport: { count: byName.count.execution.taskSupport, sleep: byName.sleep.execution.taskSupport },
            count: {
                taskId: countTaskId,
                ttl: created.ttl,
                pollInterval: created.pollInterval ?? null,
                stream: kinds,
                polledStatuses: statuses,
                status: countTask.status,
                structuredContent: countResult.structuredContent,
                relatedTaskMeta: countResult._meta?.[RELATED_TASK] ?? null,
                // Top-level keys of the tasks/result payload as the SDK received them (reported,
                // not checked: the 2025-11-25 CallToolResult is content/structuredContent/isError/_meta).
                resultKeys: Object.keys(countResult).sort(),
                cancelCompletedError: cancelDone.code
            },
            blockingResult: { taskId: shortTaskId, blockedMs, text: shortText, status: shortTask.status },
            sleep: {
                taskId: sleepTaskId,
                statusBeforeCancel: sleepBefore.status,
                cancelReplyStatus: cancelReply.status,
                status: sleepAfter.status,
                streamAfterCancel: sleepRest.map(m => (m.type === 'taskStatus' ? `taskStatus:${m.task.status}` : m.type)),
                resultError: { code: cancelledResult.code, message: cancelledResult.message },
                progressNotifications: progressNotifications.length
            },
            list: { pages, taskIds: Object.keys(listedById), statuses: listedById },
            unknownTaskError: { code: unknown.code, message: unknown.message },
            statusNotifications
        };
        process.stdout.write(`${JSON.stringify(summary)}\n`);
    } finally {
        await transport.terminateSession().catch(() => {});
        await client.close().catch(() => {});
    }
}

main().then(
    () => process.exit(0),
    error => {
        const message = error instanceof CheckFailed ? error.message : `unexpected error: ${error?.stack ?? error}`;
        process.stderr.write(`FAIL: ${message}\n`);
        process.exit(1);
    }
);
