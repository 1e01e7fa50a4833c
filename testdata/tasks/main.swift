// Swift Concurrency state swref must attribute: tasks suspended in an async function holding a
// local, an actor holding a dictionary, a task-local value, a task group's endless children.
// Prints READY, then waits.
// Usage: tasks N
import Glibc

final class Payload {
    let id: Int
    var data: [UInt8]
    init(id: Int) { self.id = id; data = [UInt8](repeating: UInt8(truncatingIfNeeded: id), count: 100) }
}
final class RequestInfo { let id: Int; init(id: Int) { self.id = id } }
final class Stored { let id: Int; init(id: Int) { self.id = id } }
final class GroupHeld { let id: Int; init(id: Int) { self.id = id } }

actor Store {
    var items: [Int: Stored] = [:]
    func fill(_ count: Int) { for i in 0..<count { items[i] = Stored(id: i) } }
}

enum Context {
    @TaskLocal static var request: RequestInfo?
}

/// Continuations parked here keep their tasks suspended.
final class Parking: @unchecked Sendable {
    private var mutex = pthread_mutex_t()
    private var continuations: [CheckedContinuation<Void, Never>] = []
    init() { pthread_mutex_init(&mutex, nil) }
    func park(_ continuation: CheckedContinuation<Void, Never>) {
        pthread_mutex_lock(&mutex); continuations.append(continuation); pthread_mutex_unlock(&mutex)
    }
    var count: Int { pthread_mutex_lock(&mutex); defer { pthread_mutex_unlock(&mutex) }; return continuations.count }
}

let parking = Parking()
let store = Store()

/// Addresses as plain integers: the objects escape (so -O keeps them on the heap), yet no reference
/// swref follows points at them.
final class Escapes: @unchecked Sendable {
    private var mutex = pthread_mutex_t()
    var addresses: [Int] = []
    init() { pthread_mutex_init(&mutex, nil) }
    func note(_ object: AnyObject) {
        pthread_mutex_lock(&mutex); addresses.append(Int(bitPattern: Unmanaged.passUnretained(object).toOpaque())); pthread_mutex_unlock(&mutex)
    }
}
let escapes = Escapes()

@inline(never) func handleRequest(_ id: Int) async {
    let payload = Payload(id: id)  // lives in this async frame across the await
    escapes.note(payload)
    await withCheckedContinuation { parking.park($0) }
    if payload.id < 0 { print(payload.data.count) }
}

@inline(never) func serveWithContext() async {
    await Context.$request.withValue(RequestInfo(id: 99)) {
        await withCheckedContinuation { parking.park($0) }
    }
}

/// A task group whose children never finish, as swift-service-lifecycle's service groups run:
/// half wait on a continuation nobody resumes, half on a stream nobody feeds. Each child's closure
/// captures a GroupHeld, which only that child's task holds (its closure context).
let (neverFed, feeder) = AsyncStream<Int>.makeStream()
let groupChildren = 4
@inline(never) func serveGroup() async {
    await withTaskGroup(of: Void.self) { group in
        for i in 0..<groupChildren {
            let held = GroupHeld(id: i)
            escapes.note(held)
            if i % 2 == 0 {
                group.addTask { await withCheckedContinuation { parking.park($0) }; if held.id < 0 { print(held.id) } }
            } else {
                group.addTask { for await value in neverFed where value == held.id { print(value) } }
            }
        }
        await group.waitForAll()
    }
}

let count = CommandLine.arguments.count > 1 ? Int(CommandLine.arguments[1])! : 8
for i in 0..<count { Task.detached { await handleRequest(i) } }
Task.detached { await serveWithContext() }
Task.detached { await store.fill(10) }
Task.detached { await serveGroup() }
while parking.count < count + 1 + groupChildren / 2 { usleep(1000) }
usleep(100_000)
print("READY \(count)")
fflush(stdout)
while true { pause() }
