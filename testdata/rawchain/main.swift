// A linked list of 255 raw 80-byte malloc blocks (each block's first word points to the next),
// held by a global: its profile must fold the chain into one frame, not 254 frames deep.
import Glibc

/// A Swift object too: a Swift process whose heap holds none is taken for one swref could not read.
final class Marker { var id = 1 }
let marker = Marker()

nonisolated(unsafe) var head: UnsafeMutableRawPointer? = nil
for _ in 0..<255 {
    let block = malloc(80)!
    memset(block, 0, 80)
    block.storeBytes(of: head, as: UnsafeMutableRawPointer?.self)
    head = block
}
print("READY")
fflush(stdout)
while true { pause() }
