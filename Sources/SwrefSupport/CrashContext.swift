import CSwrefSystem

/// What swref is doing, kept where its crash handler can read it: a trap in swref or a fault in a
/// library it calls (libswiftRemoteMirror reads target memory too) then prints the phase and the
/// type, and exits with the command's documented status instead of a bare "Illegal instruction".
public enum CrashContext {
    /// Installs the handlers (they also detach every traced thread first) with the exit status a
    /// crash should give: 2 for the analysing commands, 125 for `swref run`.
    public static func install(exitStatus: Int32) {
        swref_install_detach_handlers()
        swref_set_crash_status(exitStatus)
    }

    public static func set(_ activity: String) { swref_set_activity(activity) }

    /// The program `swref run` launched: a signal that ends swref is passed on to it.
    public static func launched(_ pid: Int32) { swref_set_launched_child(pid) }
}
