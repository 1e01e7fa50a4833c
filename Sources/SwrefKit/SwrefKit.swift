// The layers in one import, for the CLI and the end-to-end tests; code inside a layer imports
// only the layers below it (Package.swift).
@_exported import SwrefCapture
@_exported import SwrefGraph
@_exported import SwrefImages
@_exported import SwrefMemory
@_exported import SwrefPipeline
@_exported import SwrefReports
@_exported import SwrefRuntimes
@_exported import SwrefSupport
