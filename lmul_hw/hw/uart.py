"""A unit behind a UART command loop, so that it can run on a board (docs/fpga-board.md).

The loop receives a command of 2 n_in bytes (n_in = ceil(W / 8), W the operand width): operand
``a`` then operand ``b``, each little-endian, bits above W ignored.  It applies them to the unit,
waits the unit's latency and sends the product as n_out = ceil(W_out / 8) bytes, little-endian,
zero-padded.  Bytes are 8N1.  A command left unfinished for ``idle_timeout`` clock cycles is
dropped, so a host can always start afresh by staying silent a moment.

Received bytes are gathered while a product is still being sent, so a host may stream commands
back to back as long as each product takes no longer on the line than a command (n_out < 2 n_in).
"""

from amaranth.hdl import Cat, Const, Elaboratable, Module, Signal
from amaranth.lib import io, wiring
from amaranth.lib.wiring import In, Out

__all__ = ["UartRx", "UartTx", "UartLoop", "BoardTop", "divisor_for", "command_bytes"]

#: How far the baud rate made from the clock may be from the one asked for: 8N1 framing tolerates
#: about 5% between the two ends in total, shared by both of them.
MAX_BAUD_ERROR = 0.02
#: The smallest divisor: the receiver samples each bit once, in its middle, found from a half divisor.
MIN_DIVISOR = 4


def divisor_for(clk_hz: float, baud: int) -> int:
    """Clock cycles per bit; ValueError when the clock cannot make ``baud`` within MAX_BAUD_ERROR."""
    if baud <= 0 or clk_hz <= 0:
        raise ValueError(f"baud rate and clock must be positive, not {baud} and {clk_hz} Hz")
    divisor = round(clk_hz / baud)
    if divisor < MIN_DIVISOR:
        raise ValueError(f"a {clk_hz / 1e6:g} MHz clock cannot make {baud} baud (at least {MIN_DIVISOR} cycles "
                         f"per bit needed, it gives {clk_hz / baud:.2f})")
    error = abs(clk_hz / divisor - baud) / baud
    if error > MAX_BAUD_ERROR:
        raise ValueError(f"a {clk_hz / 1e6:g} MHz clock makes {clk_hz / divisor:.0f} baud for {baud} "
                         f"({error:.1%} off; at most {MAX_BAUD_ERROR:.0%})")
    return divisor


def command_bytes(width: int) -> int:
    """Bytes of one value of ``width`` bits on the line."""
    return (width + 7) // 8


class UartRx(wiring.Component):
    """8N1 receiver: ``valid`` is high for one cycle with ``data`` at the middle of each good stop bit.

    The line passes two flip-flops first (it is asynchronous to the clock).  A start bit is checked
    again half a bit after its falling edge; a byte whose stop bit is low is dropped, and the receiver
    then waits for the line to go high before it looks for the next start bit."""

    rx: In(1, init=1)
    data: Out(8)
    valid: Out(1)

    def __init__(self, divisor: int):
        self.divisor = divisor
        super().__init__()

    def elaborate(self, platform):
        m = Module()
        div = self.divisor
        sync1, line = Signal(init=1), Signal(init=1)
        m.d.sync += [sync1.eq(self.rx), line.eq(sync1)]
        timer = Signal(range(div))
        bits = Signal(range(8))
        shift = Signal(8)
        m.d.sync += self.valid.eq(0)
        with m.FSM():
            with m.State("idle"):
                with m.If(~line):
                    m.d.sync += timer.eq(div // 2 - 1)
                    m.next = "start"
            with m.State("start"):
                with m.If(timer != 0):
                    m.d.sync += timer.eq(timer - 1)
                with m.Elif(line):                      # a glitch, not a start bit
                    m.next = "idle"
                with m.Else():
                    m.d.sync += [timer.eq(div - 1), bits.eq(0)]
                    m.next = "data"
            with m.State("data"):
                with m.If(timer != 0):
                    m.d.sync += timer.eq(timer - 1)
                with m.Else():
                    m.d.sync += [shift.eq(Cat(shift[1:], line)), timer.eq(div - 1), bits.eq(bits + 1)]
                    with m.If(bits == 7):
                        m.next = "stop"
            with m.State("stop"):
                with m.If(timer != 0):
                    m.d.sync += timer.eq(timer - 1)
                with m.Elif(line):
                    m.d.sync += [self.data.eq(shift), self.valid.eq(1)]
                    m.next = "idle"
                with m.Else():                          # framing error or a break
                    m.next = "wait_high"
            with m.State("wait_high"):
                with m.If(line):
                    m.next = "idle"
        return m


class UartTx(wiring.Component):
    """8N1 transmitter: takes ``data`` when ``valid`` and ``ready`` are both high, sends it LSB first."""

    data: In(8)
    valid: In(1)
    ready: Out(1)
    tx: Out(1, init=1)

    def __init__(self, divisor: int):
        self.divisor = divisor
        super().__init__()

    def elaborate(self, platform):
        m = Module()
        div = self.divisor
        frame = Signal(10, init=(1 << 10) - 1)          # stop, data (LSB first), start; bit 0 is on the line
        left = Signal(range(11))                        # bits still to send
        timer = Signal(range(div))
        m.d.comb += [self.ready.eq(left == 0), self.tx.eq(frame[0])]
        with m.If(self.valid & self.ready):
            m.d.sync += [frame.eq(Cat(Const(0, 1), self.data, Const(1, 1))), left.eq(10), timer.eq(div - 1)]
        with m.Elif(left != 0):
            with m.If(timer != 0):
                m.d.sync += timer.eq(timer - 1)
            with m.Else():
                m.d.sync += [frame.eq(Cat(frame[1:], Const(1, 1))), left.eq(left - 1), timer.eq(div - 1)]
        return m


class UartLoop(wiring.Component):
    """The command loop around one unit (module docstring): ports ``rx`` and ``tx``, 8N1 at
    ``clock / divisor`` baud.  ``unit`` is the unit's component (lmul_hw.hw.unit_for)."""

    rx: In(1, init=1)
    tx: Out(1, init=1)

    def __init__(self, unit, divisor: int, idle_timeout: int):
        if idle_timeout < 1:
            raise ValueError(f"idle_timeout must be at least one cycle, not {idle_timeout}")
        self.unit, self.divisor, self.idle_timeout = unit, divisor, idle_timeout
        super().__init__()

    def elaborate(self, platform):
        m = Module()
        unit = self.unit
        w_in, w_out, latency = len(unit.a), len(unit.p), unit.cfg.latency
        n_in, n_out = command_bytes(w_in), command_bytes(w_out)
        m.submodules.rx = rx = UartRx(self.divisor)
        m.submodules.tx = tx = UartTx(self.divisor)
        m.submodules.unit = unit
        m.d.comb += [rx.rx.eq(self.rx), self.tx.eq(tx.tx)]

        # gather a command: each byte enters at the top, so a ends in the low n_in bytes
        command = Signal(16 * n_in)
        count = Signal(range(2 * n_in + 1))
        idle = Signal(range(self.idle_timeout + 1))
        a_q, b_q = Signal(w_in), Signal(w_in)
        pending = Signal()                              # a whole command waits in a_q, b_q
        taken = Signal()
        m.d.comb += [unit.a.eq(a_q), unit.b.eq(b_q)]
        with m.If(taken):
            m.d.sync += pending.eq(0)
        with m.If(rx.valid):
            m.d.sync += [command.eq(Cat(command[8:], rx.data)), idle.eq(0)]
            with m.If(count == 2 * n_in - 1):
                full = Cat(command[8:], rx.data)
                m.d.sync += [a_q.eq(full[:w_in]), b_q.eq(full[8 * n_in:8 * n_in + w_in]), pending.eq(1),
                             count.eq(0)]
            with m.Else():
                m.d.sync += count.eq(count + 1)
        with m.Elif(count != 0):
            with m.If(idle == self.idle_timeout - 1):   # an unfinished command: drop it
                m.d.sync += [count.eq(0), idle.eq(0)]
            with m.Else():
                m.d.sync += idle.eq(idle + 1)

        # answer it: wait for the unit, then hand the product to the transmitter byte by byte
        wait = Signal(range(latency + 1))
        product = Signal(8 * n_out)
        sent = Signal(range(n_out + 1))
        m.d.comb += tx.data.eq(product[:8])
        with m.FSM():
            with m.State("ready"):
                with m.If(pending):
                    m.d.comb += taken.eq(1)
                    m.d.sync += wait.eq(latency)
                    m.next = "compute"
            with m.State("compute"):
                with m.If(wait != 0):
                    m.d.sync += wait.eq(wait - 1)
                with m.Else():
                    m.d.sync += [product.eq(unit.p), sent.eq(0)]
                    m.next = "send"
            with m.State("send"):
                m.d.comb += tx.valid.eq(1)
                with m.If(tx.ready):
                    m.d.sync += [product.eq(product >> 8), sent.eq(sent + 1)]
                    with m.If(sent == n_out - 1):
                        m.next = "ready"
        return m


class BoardTop(Elaboratable):
    """The loop on a board: its first UART resource (amaranth-boards), clocked by the board's
    default clock."""

    def __init__(self, loop: UartLoop):
        self.loop = loop

    def elaborate(self, platform):
        m = Module()
        m.submodules.loop = loop = self.loop
        uart = platform.request("uart", 0, dir="-")
        m.submodules.rx_pin = rx = io.Buffer("i", uart.rx)
        m.submodules.tx_pin = tx = io.Buffer("o", uart.tx)
        m.d.comb += [loop.rx.eq(rx.i), tx.o.eq(loop.tx)]
        return m
