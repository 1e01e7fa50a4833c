import Glibc

/// Two pieces of independent work at once: one on this thread, one on a thread made for it.
public enum Parallel {
    public static var hasSecondCore: Bool { sysconf(Int32(_SC_NPROCESSORS_ONLN)) >= 2 }

    /// Whether a pass over `count` objects takes a second thread: the bound the analysis' passes
    /// share (200 000 objects; a smaller heap is not worth a thread), and a second core.
    public static func splits(objects count: Int) -> Bool { count >= 200_000 && hasSecondCore }

    /// Runs `background` on a new thread and `foreground` on this one, and returns when both are
    /// done; both here, one after the other, on a single core or when no thread can be made.
    public static func run(_ foreground: () -> Void, _ background: @escaping () -> Void) {
        guard hasSecondCore, let thread = spawn(background) else {
            foreground()
            background()
            return
        }
        foreground()
        pthread_join(thread, nil)
    }

    /// Runs `body` on a thread of its own that nobody waits for (here, if no thread can be made).
    public static func detach(_ body: @escaping () -> Void) {
        guard let thread = spawn(body) else { return body() }
        pthread_detach(thread)
    }

    /// A new thread running `body`; nil when none can be made.
    private static func spawn(_ body: @escaping () -> Void) -> pthread_t? {
        var thread = pthread_t()
        let work = Unmanaged.passRetained(Work(body))
        guard pthread_create(&thread, nil, { raw in
            Unmanaged<Work>.fromOpaque(raw!).takeRetainedValue().body()
            return nil
        }, work.toOpaque()) == 0 else {
            work.release()
            return nil
        }
        return thread
    }

    private final class Work {
        let body: () -> Void
        init(_ body: @escaping () -> Void) { self.body = body }
    }
}
