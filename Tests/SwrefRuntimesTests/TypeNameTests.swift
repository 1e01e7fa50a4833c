import SwrefRuntimes
import XCTest

/// Private type names the same in every run: the context's address the reflection library prints
/// for an unreadable discriminator is dropped, nothing else is touched.
final class TypeNameTests: XCTestCase {
    func testPrivateTypeNamesLoseTheirAddress() {
        XCTAssertEqual(SwiftTypeNames.stable("NIOCore.(BackingStorage in $55f9fb4861b8)"), "NIOCore.BackingStorage")
        XCTAssertEqual(SwiftTypeNames.stable("Swift.Dictionary<Swift.String, app.(Entry in $7f00aa)>"),
                       "Swift.Dictionary<Swift.String, app.Entry>")
        XCTAssertEqual(SwiftTypeNames.stable("(closure #1 () -> Swift.Int in app)"), "(closure #1 () -> Swift.Int in app)")
        XCTAssertEqual(SwiftTypeNames.stable("a.(B in $xyz)"), "a.(B in $xyz)", "not an address: kept")
        XCTAssertEqual(SwiftTypeNames.stable("a.(B in $12"), "a.(B in $12", "unclosed: kept")
        XCTAssertEqual(SwiftTypeNames.stable("names.(unknown context at $5592a0c1d2e0).LocalS"), "names.(local).LocalS")
        XCTAssertEqual(SwiftTypeNames.stable("[names.(unknown context at $7f00).A<names.(B in $55)>]"), "[names.(local).A<names.B>]")
        XCTAssertEqual(SwiftTypeNames.stable("a.(unknown context at $zz).B"), "a.(unknown context at $zz).B", "not an address: kept")
    }
}

/// A type nested in a generic one loses the empty argument list the demangler prints for it;
/// real argument lists stay.
final class EmptyGenericArgumentTests: XCTestCase {
    func testEmptyArgumentListsAreDropped() {
        XCTAssertEqual(SwiftTypeNames.withoutEmptyArguments("app.List<Swift.Int>.Node<>"), "app.List<Swift.Int>.Node")
        XCTAssertEqual(SwiftTypeNames.withoutEmptyArguments("Swift.Array<app.List<app.Item>.Node<>>"), "Swift.Array<app.List<app.Item>.Node>")
        XCTAssertEqual(SwiftTypeNames.withoutEmptyArguments("app.Outer<Swift.Int>.Inner<app.Label>"), "app.Outer<Swift.Int>.Inner<app.Label>")
    }
}
