public final class Widget {
    public var peer: Widget?
    public init() {}
}

/// Two widgets that hold each other: a retain cycle nothing will break.
public func pairUp() {
    let a = Widget(), b = Widget()
    a.peer = b
    b.peer = a
}
