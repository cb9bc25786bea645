"""A TCP proxy the tests steer: it holds back, stalls or cuts what flows.

    tcp_proxy.py UPSTREAM_HOST UPSTREAM_PORT

It listens on a free port of 127.0.0.1 and prints `LISTENING <port>`. Every
chunk read from upstream is written to the client `delay` seconds after the
proxy read it, in order; what the client sends goes upstream at once. Lines
on stdin steer it, each answered once in force:

    delay SECONDS   the delay for what is read from then on (DELAY SECONDS)
    cut             drop every connection, and each new one (CUT)
    stall           hold everything, both ways, connections kept (STALLED)
    restore         let connections in and data flow again (RESTORED)

It stops at the end of stdin, or on SIGTERM.
"""

import asyncio
import sys
import threading


class Proxy:

    def __init__(self, upstream):
        self.upstream = upstream
        self.delay = 0.0
        self.cut = False
        self.flowing = asyncio.Event()
        self.flowing.set()
        self.writers = set()

    async def handle(self, client_reader, client_writer):
        if self.cut:
            client_writer.transport.abort()
            return
        try:
            reader, writer = await asyncio.open_connection(*self.upstream)
        except OSError:
            client_writer.close()
            return
        self.writers.update((client_writer, writer))
        await asyncio.gather(self.forward(client_reader, writer),
                             self.hold_back(reader, client_writer),
                             return_exceptions=True)
        self.writers.difference_update((client_writer, writer))

    async def forward(self, reader, writer):
        try:
            while data := await reader.read(65536):
                await self.flowing.wait()
                writer.write(data)
                await writer.drain()
        finally:
            writer.close()

    async def hold_back(self, reader, writer):
        loop = asyncio.get_running_loop()
        chunks = asyncio.Queue()

        async def write_when_due():
            try:
                while True:
                    due, data = await chunks.get()
                    wait = due - loop.time()
                    if wait > 0:
                        await asyncio.sleep(wait)
                    if not data:
                        return
                    await self.flowing.wait()
                    writer.write(data)
                    await writer.drain()
            finally:
                writer.close()

        writing = asyncio.ensure_future(write_when_due())
        try:
            while True:
                data = await reader.read(65536)
                chunks.put_nowait((loop.time() + self.delay, data))
                if not data:
                    break
        finally:
            chunks.put_nowait((loop.time() + self.delay, b''))
            await writing

    def set_delay(self, seconds):
        self.delay = seconds
        print('DELAY %s' % seconds, flush=True)

    def command(self, words):
        if words[:1] == ['delay']:
            self.set_delay(float(words[1]))
        elif words == ['cut']:
            self.cut = True
            for writer in list(self.writers):
                writer.transport.abort()
            print('CUT', flush=True)
        elif words == ['stall']:
            self.flowing.clear()
            print('STALLED', flush=True)
        elif words == ['restore']:
            self.cut = False
            self.flowing.set()
            print('RESTORED', flush=True)


def read_commands(loop, proxy, done):
    for line in sys.stdin:
        loop.call_soon_threadsafe(proxy.command, line.split())
    loop.call_soon_threadsafe(done.set)


async def main():
    proxy = Proxy((sys.argv[1], int(sys.argv[2])))
    server = await asyncio.start_server(proxy.handle, '127.0.0.1', 0)
    print('LISTENING %d' % server.sockets[0].getsockname()[1], flush=True)
    done = asyncio.Event()
    threading.Thread(target=read_commands, daemon=True,
                     args=(asyncio.get_running_loop(), proxy, done)).start()
    async with server:
        await done.wait()


if __name__ == '__main__':
    asyncio.run(main())
