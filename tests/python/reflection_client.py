"""A gRPC client for Assurance built only from server reflection.

It knows no .proto file and no generated code: it asks the server's reflection service
(grpc.reflection.v1alpha) for the file descriptors of each service, builds message classes from
them and calls methods by name with JSON-shaped dicts. Requires `grpcio`, `grpcio-reflection` and
`protobuf` (pip install grpcio grpcio-reflection protobuf).
"""

import grpc
from google.protobuf import descriptor_pb2, descriptor_pool, json_format, message_factory
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc


class ReflectionClient:
    def __init__(self, target, token=None):
        self.channel = grpc.insecure_channel(target)
        self.token = token
        self.pool = descriptor_pool.DescriptorPool()
        self._stub = reflection_pb2_grpc.ServerReflectionStub(self.channel)
        self._loaded = set()

    def services(self):
        response = self._ask(reflection_pb2.ServerReflectionRequest(list_services=""))
        return [s.name for s in response.list_services_response.service]

    def _ask(self, request):
        return next(iter(self._stub.ServerReflectionInfo(iter([request]))))

    def _load_symbol(self, symbol):
        response = self._ask(reflection_pb2.ServerReflectionRequest(file_containing_symbol=symbol))
        if response.HasField("error_response"):
            raise LookupError(f"{symbol}: {response.error_response.error_message}")
        files = [descriptor_pb2.FileDescriptorProto.FromString(raw)
                 for raw in response.file_descriptor_response.file_descriptor_proto]
        self._add_files(files)

    def _add_files(self, files):
        # Add dependencies before dependents; a file the pool already has is skipped.
        pending = {f.name: f for f in files if f.name not in self._loaded}
        while pending:
            progressed = False
            for name, f in list(pending.items()):
                if all(d in self._loaded or d not in pending for d in f.dependency):
                    missing = [d for d in f.dependency if d not in self._loaded]
                    for dep in missing:
                        self._load_file(dep)
                    self.pool.Add(f)
                    self._loaded.add(name)
                    del pending[name]
                    progressed = True
            if not progressed:
                raise RuntimeError(f"cyclic file dependencies: {sorted(pending)}")

    def _load_file(self, filename):
        if filename in self._loaded:
            return
        try:
            self.pool.FindFileByName(filename)  # a well-known type the pool ships
            self._loaded.add(filename)
            return
        except KeyError:
            pass
        response = self._ask(reflection_pb2.ServerReflectionRequest(file_by_filename=filename))
        if response.HasField("error_response"):
            raise LookupError(f"{filename}: {response.error_response.error_message}")
        files = [descriptor_pb2.FileDescriptorProto.FromString(raw)
                 for raw in response.file_descriptor_response.file_descriptor_proto]
        self._add_files(files)

    def method(self, full_method):
        """`package.Service/Method` -> its MethodDescriptor, loading it by reflection."""
        service, name = full_method.split("/")
        try:
            descriptor = self.pool.FindServiceByName(service)
        except KeyError:
            self._load_symbol(service)
            descriptor = self.pool.FindServiceByName(service)
        return descriptor.methods_by_name[name]

    def call(self, full_method, request=None, token=None):
        """Calls a unary method with a dict request; returns the response as a dict (proto field
        names). A failed call raises grpc.RpcError."""
        method = self.method(full_method)
        request_class = message_factory.GetMessageClass(method.input_type)
        response_class = message_factory.GetMessageClass(method.output_type)
        message = json_format.ParseDict(request or {}, request_class())
        rpc = self.channel.unary_unary(
            f"/{full_method}",
            request_serializer=lambda m: m.SerializeToString(),
            response_deserializer=response_class.FromString,
        )
        token = token or self.token
        metadata = [("authorization", f"Bearer {token}")] if token else []
        response = rpc(message, metadata=metadata, timeout=30)
        return json_format.MessageToDict(response, preserving_proto_field_name=True)
