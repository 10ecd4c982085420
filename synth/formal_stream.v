// Formal harness of the stream contract (SPEC §5) around one generated tensor core, read by
// lmul_hw/prove.py with `read_verilog -formal`.  The core's top module comes in as the macro
// LMUL_HW_TOP; CHECK selects the one property a proof task asserts (1..6), so each gets its own verdict.
module lmul_hw_formal #(
    parameter IW = 33,          // i__payload width; its top bit is `last`
    parameter OW = 65,          // o__payload width; its top bit is `last`
    parameter ROWS = 2,         // R: rows per tile
    parameter DEPTH = 2,        // K_max: the longest tile the environment sends
    parameter BOUND = 24,       // progress: most o__ready cycles without a beat while a tile is owed
    parameter CHECK = 0
) (
    input clk,
    input rst,
    input i__valid,
    input [IW-1:0] i__payload,
    input o__ready
);
    wire i__ready, o__valid;
    wire [OW-1:0] o__payload;
    `LMUL_HW_TOP dut (.clk(clk), .rst(rst), .i__valid(i__valid), .i__ready(i__ready), .i__payload(i__payload),
                      .o__valid(o__valid), .o__ready(o__ready), .o__payload(o__payload));

    wire in_beat = i__valid && i__ready && !rst;
    wire out_beat = o__valid && o__ready && !rst;
    wire in_last = i__payload[IW-1];
    wire out_last = o__payload[OW-1];

    reg past_valid = 1'b0;
    reg [7:0] in_beats = 8'd0;      // beats of the tile coming in so far
    reg [7:0] in_flight = 8'd0;     // tiles taken whole and not yet out whole
    reg [7:0] row = 8'd0;           // rows of the tile going out so far
    reg [7:0] stall = 8'd0;         // o__ready cycles without an output beat while a tile is owed
    always @(posedge clk) begin
        past_valid <= 1'b1;
        if (rst) begin
            in_beats <= 8'd0;
            in_flight <= 8'd0;
            row <= 8'd0;
            stall <= 8'd0;
        end else begin
            if (in_beat)
                in_beats <= in_last ? 8'd0 : in_beats + 8'd1;
            if (out_beat)
                row <= out_last ? 8'd0 : row + 8'd1;
            in_flight <= in_flight + (in_beat && in_last) - (out_beat && out_last);
            if (out_beat || in_flight == 8'd0)
                stall <= 8'd0;
            else if (o__ready && stall != 8'hff)
                stall <= stall + 8'd1;
        end
    end

    // The environment: reset first; valid held until ready with the payload still; tiles of 1..K beats.
    always @(*) begin
        if (!past_valid)
            assume(rst);
        if (i__valid && in_beats == DEPTH - 1)
            assume(in_last);
    end
    always @(posedge clk)
        if (past_valid && $past(i__valid && !i__ready && !rst)) begin
            assume(i__valid);
            assume(i__payload == $past(i__payload));
        end

    // The core's side of the contract.
    always @(posedge clk)
        if (past_valid) begin
            if (CHECK == 1 && $past(o__valid && !o__ready && !rst))
                valid_held: assert(o__valid);
            if (CHECK == 2 && $past(o__valid && !o__ready && !rst))
                payload_stable: assert(o__payload == $past(o__payload));
            if (CHECK == 3 && $past(rst))
                reset_empties: assert(!o__valid);
        end
    always @(*) begin
        if (CHECK == 4 && past_valid && out_beat)
            rows_per_tile: assert(out_last == (row == ROWS - 1));
        if (CHECK == 5 && past_valid && o__valid)
            no_phantom_tile: assert(in_flight != 8'd0);
        if (CHECK == 6 && past_valid)
            progress: assert(stall < BOUND);
        cover_tile: cover(past_valid && out_beat && out_last);
    end
endmodule
