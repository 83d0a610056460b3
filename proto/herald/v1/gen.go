// Package heraldv1 is Herald's wire schema, generated from herald.proto.
// The generated code is committed so that building Herald needs no protoc.
package heraldv1

//go:generate protoc --go_out=. --go_opt=paths=source_relative herald.proto
